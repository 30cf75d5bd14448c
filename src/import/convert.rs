//! What changes between the source and the written file: a section's own wrapping
//! transaction turned into comments, and the markers crdb-migrate needs added.

use std::path::PathBuf;

use super::{Foreign, Line};
use crate::source;

/// The upper-cased words of a statement.
fn words(statement: &str) -> Vec<String> {
    use crate::split::{TokenKind, tokens};
    tokens(statement)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| statement[t.start..t.end].to_ascii_uppercase())
        .collect()
}

/// Turns a section's own wrapping transaction into comments: when its first statement is a
/// bare `BEGIN` / `START TRANSACTION` and its last a bare `COMMIT` / `END`, each alone on its
/// line, with no other transaction control between, those two lines get a `-- ` prefix (the
/// migration runs in one transaction here anyway; golang-migrate's PostgreSQL tutorial writes
/// its migrations this way). Anything less clean is left for the loader to refuse.
pub(super) fn unwrap_transaction(section: &mut [Line]) {
    let text: String = section.iter().map(|l| l.text.as_str()).collect();
    let statements = crate::split::split(&text);
    let (Some(first), Some(last)) = (statements.first(), statements.last()) else {
        return;
    };
    if statements.len() < 2 {
        return;
    }
    let w = |s: &crate::split::Statement| words(&s.text);
    let is_begin = |w: &[String]| {
        matches!(
            w.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["BEGIN"] | ["BEGIN", "TRANSACTION" | "WORK"] | ["START", "TRANSACTION"]
        )
    };
    let is_commit = |w: &[String]| {
        matches!(
            w.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["COMMIT" | "END"] | ["COMMIT" | "END", "TRANSACTION" | "WORK"]
        )
    };
    if !is_begin(&w(first)) || !is_commit(&w(last)) {
        return;
    }
    let control = |s: &crate::split::Statement| {
        let w = w(s);
        matches!(
            w.first().map(String::as_str),
            Some("BEGIN" | "COMMIT" | "END" | "ABORT" | "START" | "PREPARE")
        ) || (w.first().is_some_and(|x| x == "ROLLBACK") && w.get(1).is_none_or(|x| x != "TO"))
    };
    if statements[1..statements.len() - 1].iter().any(control) {
        return;
    }
    let alone = |s: &crate::split::Statement| {
        section.get(s.line - 1).is_some_and(|l| {
            let c = l.content().trim();
            c.trim_end_matches(';').trim_end() == s.text && c.matches(';').count() <= 1
        })
    };
    if !alone(first) || !alone(last) {
        return;
    }
    for line in [first.line, last.line] {
        if let Some(l) = section.get_mut(line - 1) {
            l.text.insert_str(0, "-- ");
        }
    }
}

/// The file body and, per line of it, the source line it came from.
pub(super) fn render(f: &Foreign) -> (String, Vec<Option<(PathBuf, usize)>>) {
    let nl = if f.crlf { "\r\n" } else { "\n" };
    let mut body = String::new();
    let mut origins = Vec::new();
    if f.no_transaction {
        body.push_str(source::NO_TRANSACTION);
        body.push_str(nl);
        origins.push(None);
    }
    for l in &f.up {
        body.push_str(&l.text);
        origins.push(Some((l.path.clone(), l.line)));
    }
    if let Some(down) = &f.down {
        if !body.is_empty() && !body.ends_with('\n') {
            body.push_str(nl);
        }
        body.push_str(source::UNDO_MARKER);
        body.push_str(nl);
        origins.push(None);
        for l in down {
            body.push_str(&l.text);
            origins.push(Some((l.path.clone(), l.line)));
        }
    }
    (body, origins)
}

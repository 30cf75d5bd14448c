//! The body of one migration file: the `-- @UNDO` marker, the directive block, the statements
//! (split once, here, with their lines in the file) and the checksum.

use sha2::{Digest, Sha256};
use std::path::Path;

use super::body::Body;
use super::directive::{Directives, read_directives};
use super::split::{REPEAT_UNTIL_ZERO, Statement, TokenKind, split, tokens};
use super::{
    Migration, NO_TRANSACTION, Problem, UNDO_MARKER, UNDO_PLACEHOLDER, UP_PLACEHOLDER, parse_name,
    problem,
};

/// `\r\n` and lone `\r` become `\n`.
fn normalise_line_endings(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Line endings to `\n`, trailing whitespace off every line and off the end.
fn normalise(s: &str) -> String {
    let s = normalise_line_endings(s);
    let lines: Vec<&str> = s.split('\n').map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

/// SHA-256 (hex) of the normalised forward SQL, then, when `down` is given, `\n-- @UNDO\n` and
/// the normalised undo SQL. Normalised: `\r\n` and lone `\r` read as `\n`, trailing whitespace
/// trimmed from every line and from the end. A CRLF copy of a file has the same checksum.
pub fn checksum(up: &str, down: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalise(up).as_bytes());
    if let Some(down) = down {
        hasher.update(b"\n-- @UNDO\n");
        hasher.update(normalise(down).as_bytes());
    }
    hex(&hasher.finalize())
}

/// The undo checksum kept in the ledger beside a migration's stored undo: SHA-256 (hex) of a
/// `-- @NO_TRANSACTION` line when the undo runs without a transaction, then the normalised undo
/// SQL (normalised as for [`checksum`]). It covers what runs and how, so a stored undo whose text
/// or mode was changed in the table is caught before it runs.
pub fn undo_checksum(down: &str, no_transaction: bool) -> String {
    let mut hasher = Sha256::new();
    if no_transaction {
        hasher.update(b"-- @NO_TRANSACTION\n");
    }
    hasher.update(normalise(down).as_bytes());
    hex(&hasher.finalize())
}

fn hex(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Parses one migration file from its path and bytes; every problem of the file is returned.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Migration, Vec<Problem>> {
    let mut problems = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = parse_name(&name).map_err(|e| problems.push(problem(path, None, e)));
    let text = match decode(path, bytes) {
        Ok(text) => text,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let marker = find_marker(path, &lines, &mut problems);
    let (up, down) = match marker {
        Some(m) => (lines[..m].join("\n"), Some(lines[m + 1..].join("\n"))),
        None => (text.clone(), None),
    };
    let up_statements = split(&up);
    let down_statements = down
        .as_deref()
        .map(|d| split_from(d, marker.map_or(0, |m| m + 1)));
    let body = Body {
        path,
        lines,
        marker,
        up_statements,
        down_statements,
    };
    let directives = read_directives(&body, &mut problems);
    check_repeats(&body, &directives, &mut problems);
    check_transaction_control(&body, &mut problems);
    check_placeholders(&body, &mut problems);
    let Ok((version, slug)) = named else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let Body {
        mut up_statements,
        mut down_statements,
        ..
    } = body;
    let mut down = down.map(|d| {
        if down_statements.as_ref().is_some_and(Vec::is_empty) {
            String::new()
        } else {
            d
        }
    });
    // A file with no statement at all is a placeholder: a no-op both ways.
    if up_statements.is_empty() && down.is_none() {
        down = Some(String::new());
        down_statements = Some(Vec::new());
    }
    // A file's one statement would otherwise keep room for four: 120 bytes a section, held
    // for every file of the set for the whole run.
    up_statements.shrink_to_fit();
    if let Some(d) = down_statements.as_mut() {
        d.shrink_to_fit();
    }
    Ok(Migration {
        version,
        description: slug.replace('_', " "),
        slug,
        path: path.to_path_buf(),
        checksum: checksum(&up, down.as_deref()),
        undo_checksum: down
            .as_deref()
            .map(|d| undo_checksum(d, directives.no_transaction)),
        up,
        down,
        up_statements,
        down_statements,
        no_transaction: directives.no_transaction,
        statement_timeout: directives.statement_timeout,
        lock_timeout: directives.lock_timeout,
        contract: directives.contract,
    })
}

/// The text of a file: UTF-8 without a BOM, line endings normalised to `\n`.
fn decode(path: &Path, bytes: &[u8]) -> Result<String, Problem> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(normalise_line_endings(
            text.strip_prefix('\u{feff}').unwrap_or(text),
        )),
        Err(e) => Err(problem(
            path,
            None,
            format!(
                "is not valid UTF-8 (first bad byte at offset {}); save it as UTF-8",
                e.valid_up_to()
            ),
        )),
    }
}

/// The statements of a section that starts after line `offset` of the file: their lines are
/// lines of the file.
fn split_from(section: &str, offset: usize) -> Vec<Statement> {
    let mut statements = split(section);
    for s in &mut statements {
        s.line += offset;
    }
    statements
}

/// The 0-based index of the first `-- @UNDO` line; a problem for every further one.
fn find_marker(path: &Path, lines: &[&str], problems: &mut Vec<Problem>) -> Option<usize> {
    let mut first = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != UNDO_MARKER {
            continue;
        }
        match first {
            None => first = Some(i),
            Some(m) => problems.push(problem(
                path,
                Some(i + 1),
                format!(
                    "a second `{UNDO_MARKER}` marker (the first is on line {}); a file has one \
                     forward and one undo section, remove one marker",
                    m + 1
                ),
            )),
        }
    }
    first
}

/// `-- @REPEAT_UNTIL_ZERO` needs `-- @NO_TRANSACTION` and must stand directly before a
/// statement.
fn check_repeats(body: &Body<'_>, d: &Directives, problems: &mut Vec<Problem>) {
    for &(lineno, in_undo) in &d.repeats {
        if !d.no_transaction {
            problems.push(problem(
                body.path,
                Some(lineno),
                format!(
                    "`{REPEAT_UNTIL_ZERO}` is only allowed in a `{NO_TRANSACTION}` file (each \
                     repetition commits on its own); add `{NO_TRANSACTION}` at the top or remove it"
                ),
            ));
            continue;
        }
        let statements: &[Statement] = if in_undo {
            body.down_statements.as_deref().unwrap_or_default()
        } else {
            &body.up_statements
        };
        // Statements are in line order: the first one after the directive line.
        let at = statements.partition_point(|s| s.line <= lineno);
        if !statements.get(at).is_some_and(|s| s.repeat_until_zero) {
            problems.push(problem(
                body.path,
                Some(lineno),
                format!(
                    "`{REPEAT_UNTIL_ZERO}` must stand on its own line between statements, \
                     directly before the statement to repeat (is a `;` missing before it, or \
                     does no statement follow?)"
                ),
            ));
        }
    }
}

/// Transaction control in either section is a problem.
fn check_transaction_control(body: &Body<'_>, problems: &mut Vec<Problem>) {
    let down = body.down_statements.as_deref().unwrap_or_default();
    for (statements, section) in [(&body.up_statements[..], "forward"), (down, "undo")] {
        for st in statements {
            if let Some(what) = transaction_control(&st.text) {
                problems.push(problem(
                    body.path,
                    Some(st.line),
                    format!(
                        "`{what}` in the {section} SQL: crdb-migrate runs each migration in one \
                         transaction with its ledger row (or, with `{NO_TRANSACTION}`, each \
                         statement on its own), so transaction control in the file would break \
                         that; remove it, or split the file"
                    ),
                ));
            }
        }
    }
}

/// What `create` writes as placeholders must be replaced before the file loads.
fn check_placeholders(body: &Body<'_>, problems: &mut Vec<Problem>) {
    let split_at = body.marker.unwrap_or(body.lines.len());
    if let Some(i) = body.lines[..split_at]
        .iter()
        .position(|l| l.trim() == UP_PLACEHOLDER)
    {
        problems.push(problem(
            body.path,
            Some(i + 1),
            "the forward section still holds the placeholder `create` wrote; write the \
             forward SQL (or, for a down-only migration, replace the line with a comment \
             saying why the forward section is empty)",
        ));
    }
    if let Some(m) = body.marker
        && let Some(i) = body
            .lines
            .iter()
            .skip(m + 1)
            .position(|l| l.trim() == UNDO_PLACEHOLDER)
    {
        problems.push(problem(
            body.path,
            Some(m + 2 + i),
            format!(
                "the undo section still holds the placeholder; write the undo SQL, or remove the \
                 `{UNDO_MARKER}` line to make the migration irreversible"
            ),
        ));
    }
}

/// The transaction-control statement `text` is, if it is one (`BEGIN`, `START TRANSACTION`,
/// `COMMIT`, `END`, `ABORT`, `ROLLBACK` but not `ROLLBACK TO SAVEPOINT`, `PREPARE
/// TRANSACTION`). Savepoints stay allowed: they live inside the transaction.
fn transaction_control(text: &str) -> Option<String> {
    let words: Vec<String> = tokens(text)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .take(2)
        .map(|t| text[t.start..t.end].to_ascii_uppercase())
        .collect();
    let first = words.first()?.as_str();
    let second = words.get(1).map(String::as_str);
    let hit = match first {
        "BEGIN" | "COMMIT" | "END" | "ABORT" => true,
        "START" | "PREPARE" => second == Some("TRANSACTION"),
        "ROLLBACK" => second != Some("TO"),
        _ => false,
    };
    hit.then(|| words.join(" "))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

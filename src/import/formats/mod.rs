//! The readers of each tool's layout, turning its files into [`Foreign`] migrations (the
//! formats are described in the parent module's docs).

mod dbmate;
mod diesel;
mod flyway;
mod golang_migrate;
mod goose;
mod pairs;
mod pop;
mod sqlx;

use std::path::{Path, PathBuf};

pub(crate) use dbmate::dbmate_marker;
pub(crate) use goose::goose_annotation;

use super::{Foreign, ImportProblem, Line, Tool, problem};
use flyway::{FlywayName, flyway_name};
use golang_migrate::golang_migrate_name;
use pairs::pairs;
use pop::{canonical_dialect, pop_name};

/// Reads `src` as `tool`'s layout: the migrations read cleanly, and the problems found (a
/// directory-wide problem, such as a bad `--dialect`, is the only one returned as `Err`).
pub(crate) fn read(
    tool: Tool,
    src: &Path,
    dialect: Option<&str>,
) -> Result<(Vec<Foreign>, Vec<ImportProblem>), Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let dialect = match (tool, dialect) {
        (_, None) => None,
        (Tool::Pop, Some(d)) => match canonical_dialect(d) {
            Some(d @ ("postgres" | "cockroach")) => Some(d),
            _ => {
                return Err(vec![problem(
                    src,
                    None,
                    format!("`--dialect {d}`: expected `postgres` or `cockroach`"),
                )]);
            }
        },
        (_, Some(_)) => {
            return Err(vec![problem(
                src,
                None,
                format!("`--dialect` only applies to pop's layout, not {tool}'s"),
            )]);
        }
    };
    let recursive = matches!(tool, Tool::Flyway | Tool::Pop);
    let files = list(src, recursive, &mut problems);
    let found = match tool {
        Tool::GolangMigrate => autocommit(
            pairs(
                golang_migrate::candidates(&files, &mut problems),
                &mut problems,
            ),
            true,
        ),
        Tool::Sqlx => pairs(sqlx::candidates(&files, &mut problems), &mut problems),
        Tool::Flyway => autocommit(
            pairs(flyway::candidates(&files, &mut problems), &mut problems),
            false,
        ),
        Tool::Pop => pairs(
            pop::candidates(&files, dialect, &mut problems),
            &mut problems,
        ),
        Tool::Goose => goose::read(&files, &mut problems),
        Tool::Dbmate => dbmate::read(&files, &mut problems),
        Tool::Diesel => diesel::read(src, &mut problems),
    };
    // Migrations with a problem of their own are left out; the others are still checked.
    let found = found
        .into_iter()
        .filter(|f| !problems.iter().any(|p| f.from.contains(&p.path)))
        .collect();
    Ok((found, problems))
}

/// Marks migrations that the tool runs outside a transaction because of what they contain.
///
/// golang-migrate sends each file as one query string without a transaction of its own, so a
/// file holding exactly one statement that PostgreSQL refuses inside a transaction block
/// (`CREATE INDEX CONCURRENTLY`, ...) runs autocommitted there (`single`). Flyway's
/// PostgreSQL parser runs a migration without a transaction when any of its statements is
/// one of those (`!single`).
fn autocommit(mut found: Vec<Foreign>, single: bool) -> Vec<Foreign> {
    for f in &mut found {
        for section in std::iter::once(&f.up).chain(f.down.as_ref()) {
            let text: String = section.iter().map(|l| l.text.as_str()).collect();
            let statements = crate::split::split(&text);
            let hit = if single {
                statements.len() == 1 && outside_transaction(&statements[0].text)
            } else {
                statements.iter().any(|s| outside_transaction(&s.text))
            };
            f.no_transaction |= hit;
        }
    }
    found
}

/// A statement PostgreSQL refuses inside a transaction block.
pub(crate) fn outside_transaction(statement: &str) -> bool {
    use crate::split::{TokenKind, tokens};
    let words: Vec<String> = tokens(statement)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .take(6)
        .map(|t| statement[t.start..t.end].to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..]
        | ["DROP", "INDEX", "CONCURRENTLY", ..]
        | ["VACUUM", ..]
        | ["ALTER", "SYSTEM", ..]
        | ["DISCARD", "ALL", ..]
        | ["CREATE" | "DROP", "DATABASE" | "TABLESPACE", ..] => true,
        ["REINDEX", rest @ ..] => rest.contains(&"CONCURRENTLY"),
        _ => false,
    }
}

/// The regular, non-hidden files of `dir` (and its sub-directories when `recursive`), sorted.
fn list(dir: &Path, recursive: bool, problems: &mut Vec<ImportProblem>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                format!("cannot read the directory: {e}"),
            ));
            return out;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                if recursive {
                    out.extend(list(&path, true, problems));
                }
            }
            Ok(m) if m.is_file() => out.push(path),
            Ok(_) => {}
            Err(e) => problems.push(problem(&path, None, format!("cannot read: {e}"))),
        }
    }
    out.sort();
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file as UTF-8 text (what the loader requires), read as the loader reads it.
fn read_text(path: &Path, problems: &mut Vec<ImportProblem>) -> Option<String> {
    let bytes = match crate::source::read_file(path) {
        Ok(bytes) => bytes,
        Err(message) => {
            problems.push(problem(path, None, message));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        // A byte-order mark would end up inside the file once a directive line precedes it.
        Ok(s) => Some(s.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(s)),
        Err(e) => {
            problems.push(problem(
                path,
                None,
                format!(
                    "is not valid UTF-8 (first bad byte at offset {}); save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ),
            ));
            None
        }
    }
}

fn is_crlf(text: &str) -> bool {
    text.contains("\r\n")
}

/// A comment or blank line (what may precede a goose/dbmate up marker).
fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with("--")
}

/// The up and down sections of a one-file layout (goose, dbmate), filled line by line.
#[derive(Default)]
struct Sections {
    up: Vec<Line>,
    /// `Some` once the down marker was seen.
    down: Option<Vec<Line>>,
    /// The up marker was seen.
    seen_up: bool,
    no_transaction: bool,
}

impl Sections {
    /// A line that is not a marker: into the down section once it began, else the up section.
    /// Before the up marker only comments and blank lines may come (`before_up` otherwise).
    fn push(&mut self, l: Line, before_up: &str, problems: &mut Vec<ImportProblem>) {
        match (&mut self.down, self.seen_up) {
            (Some(d), _) => d.push(l),
            (None, true) => self.up.push(l),
            (None, false) if is_comment_or_blank(l.content()) => self.up.push(l),
            (None, false) => problems.push(problem(&l.path, Some(l.line), before_up)),
        }
    }
}

/// Which tool a (non-crdb-migrate) `.sql` file name belongs to, for [`super::detect()`].
pub(crate) fn name_tool(name: &str) -> Option<Tool> {
    if let Some(m) = pop_name(name)
        && (m.dialect.is_some() || m.autocommit)
    {
        return Some(Tool::Pop);
    }
    if golang_migrate_name(name).is_some() {
        return Some(Tool::GolangMigrate);
    }
    if let FlywayName::Versioned(..) | FlywayName::Refused(_) = flyway_name(name) {
        return Some(Tool::Flyway);
    }
    None
}

#[cfg(test)]
mod tests;

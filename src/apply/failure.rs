//! Describing a failed step for its error: the server's words, which statement of the file
//! (and which line, following the server's error position) and a one-line excerpt of it.

use crate::error::{Error, FailedStatement, SqlFailure};
use crate::plan::{Direction, Step};
use crate::source::Migration;
use crate::split::Statement;
use crate::sqlstate;

/// The migration's SQL failed: an error carrying the server's words and where in the file (or
/// a lost connection).
pub(super) fn sql_failed(
    m: &Migration,
    e: tokio_postgres::Error,
    statement: Option<(&Step<'_>, usize)>,
    transactional: bool,
) -> Error {
    if sqlstate::is_connection_lost(&e) {
        return Error::db(format!("migration {} ({})", m.version, m.path.display()), e);
    }
    let statement = statement.map(|(step, i)| failed_statement(step, i, e.as_db_error()));
    let failure = match e.as_db_error() {
        Some(db) => SqlFailure {
            version: m.version,
            file: m.path.clone(),
            sqlstate: Some(db.code().clone()),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            statement,
            transactional,
        },
        None => SqlFailure {
            version: m.version,
            file: m.path.clone(),
            sqlstate: None,
            message: e.to_string(),
            detail: None,
            hint: None,
            statement,
            transactional,
        },
    };
    Error::MigrationFailed(Box::new(failure))
}

/// The statements a step runs.
pub(super) fn statements<'s>(step: &Step<'s>) -> &'s [Statement] {
    let m = step.migration;
    match step.direction {
        Direction::Up => &m.up_statements,
        Direction::Down => m.down_statements.as_deref().unwrap_or(&[]),
    }
}

/// Statement `i` (0-based) of `step`, described for an error; the server's error position,
/// when it sent one, moves the line to where it points.
pub(super) fn failed_statement(
    step: &Step<'_>,
    i: usize,
    db: Option<&tokio_postgres::error::DbError>,
) -> FailedStatement {
    let all = statements(step);
    let st = &all[i.min(all.len().saturating_sub(1))];
    let extra = match db.and_then(|d| d.position()) {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => st
            .text
            .chars()
            .take((*p as usize).saturating_sub(1))
            .filter(|c| *c == '\n')
            .count(),
        _ => 0,
    };
    FailedStatement {
        index: i + 1,
        total: all.len(),
        section: match step.direction {
            Direction::Up => "forward",
            Direction::Down => "undo",
        },
        line: st.line + extra,
        excerpt: excerpt(&st.text),
    }
}

/// A statement on one line, at most 80 characters.
pub(crate) fn excerpt(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}...", one_line.chars().take(77).collect::<String>())
    } else {
        one_line
    }
}

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

/// Adds the fix to a `schema_locked` refusal (SQLSTATE 57000) that came without a hint of its
/// own. CockroachDB names the table in its message. A migration's transaction goes to the legacy
/// schema changer, which refuses DDL on a locked table whatever `sql.schema.auto_unlock.enabled`
/// says (cockroachdb/cockroach#166246); setting or resetting `schema_locked` is only allowed as a
/// single-statement implicit transaction (`logic_test/schema_locked`), so the transaction cannot
/// unlock it either, and unlocking around it would not be atomic with it and would override a
/// deliberate hard lock. A single statement outside a transaction (`@NO_TRANSACTION`) goes to
/// the declarative schema changer, which unlocks and re-locks by itself.
pub(super) fn schema_locked_hint(mut err: Error) -> Error {
    if let Error::MigrationFailed(f) = &mut err
        && f.hint.is_none()
        && f.sqlstate
            .as_ref()
            .is_some_and(|s| sqlstate::is_schema_locked_code(s.code()))
    {
        let table = quoted(&f.message).unwrap_or("<table>");
        f.hint = Some(format!(
            "the table is schema_locked (from CockroachDB v26.1 the default for tables created \
             outside an explicit transaction): move this schema change to a -- @NO_TRANSACTION \
             migration, where CockroachDB unlocks and re-locks the table itself unless \
             sql.schema.auto_unlock.enabled is false; or unlock it with `ALTER TABLE {table} SET \
             (schema_locked = false)` run on its own before this migration and lock it again \
             with `ALTER TABLE {table} SET (schema_locked = true)` after it"
        ));
    }
    err
}

/// The first double-quoted name in `message`, quotes included (as SQL would need it).
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('"')?;
    let end = start + 1 + message[start + 1..].find('"')?;
    Some(&message[start..=end])
}

/// The statements a step runs.
pub(super) fn statements<'s>(step: &'s Step<'_>) -> &'s [Statement] {
    let m = &*step.migration;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(sqlstate: &str, message: &str) -> Error {
        Error::MigrationFailed(Box::new(SqlFailure {
            version: 3,
            file: "3_x.sql".into(),
            sqlstate: Some(tokio_postgres::error::SqlState::from_code(sqlstate)),
            message: message.into(),
            detail: None,
            hint: None,
            statement: None,
            transactional: true,
        }))
    }

    fn hint(e: &Error) -> Option<&str> {
        match e {
            Error::MigrationFailed(f) => f.hint.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn a_schema_locked_refusal_names_the_table_and_the_fix() {
        let e = schema_locked_hint(failure(
            "57000",
            "schema changes are disallowed on table \"accounts\" because it is locked",
        ));
        let h = hint(&e).expect("a hint");
        assert!(
            h.contains("ALTER TABLE \"accounts\" SET (schema_locked = false)"),
            "{h}"
        );
        assert!(h.contains("SET (schema_locked = true)"), "{h}");
        assert!(hint(&schema_locked_hint(failure("42P01", "no table \"x\""))).is_none());
    }
}

//! Every decision made on a SQLSTATE, in one place: what is replayed (40001), what means the
//! connection is gone, what leaves a commit's outcome unknown (XXA00, 40003), what is a lost
//! setup race between concurrent runners, and (in `connect`) how a failed connection attempt is
//! classified. Decisions use tokio-postgres' `SqlState` constants, never message text.

mod connect;

pub use connect::{Verdict, classify, facts};

use tokio_postgres::error::SqlState;

/// CockroachDB's "transaction committed but schema change aborted".
const SCHEMA_CHANGE_AFTER_COMMIT: &str = "XXA00";

/// The SQLSTATE of an error, when the server sent one.
pub fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

/// SQLSTATE 40001 ("restart transaction"): the transaction was rolled back and wrote nothing,
/// so replaying it is safe.
pub fn is_retry(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

/// SQLSTATE 55P03 (lock_not_available): a statement gave up waiting for a lock after
/// `lock_timeout` (PostgreSQL and CockroachDB) or `NOWAIT`. The transaction was rolled back;
/// trying it again later is safe, and separate from the 40001 replay budget.
pub fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| is_lock_timeout_code(c.code()))
}

/// [`is_lock_timeout`] on the code alone.
pub fn is_lock_timeout_code(code: &str) -> bool {
    code == SqlState::LOCK_NOT_AVAILABLE.code()
}

/// A code meaning the connection or the server went away: class 08, 57P01..57P03 (CockroachDB's
/// draining "server is not accepting clients" is 57P01).
pub fn is_connection_class(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// The connection is gone: closed under us, or the server said so.
pub fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || code(e).is_some_and(is_connection_class)
}

/// At COMMIT: the outcome is unknown or partial (XXA00: committed but the schema change
/// aborted; 40003: statement completion unknown). Never replayed; the migration is marked dirty.
pub fn is_commit_outcome_unknown(e: &tokio_postgres::Error) -> bool {
    code(e) == Some(SCHEMA_CHANGE_AFTER_COMMIT)
        || e.code() == Some(&SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN)
}

/// SQLSTATE 57014 (query_canceled): `statement_timeout` fired or a cancel request arrived. On
/// PostgreSQL the statement's transaction rolled back. On CockroachDB a schema change in an
/// implicit transaction commits first and is then waited for under the same timeout
/// (cockroachdb/cockroach#128474), so a 57014 there can arrive after the DDL committed, with its
/// job still running: the outcome is unknown.
pub fn is_query_canceled(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
}

/// At COMMIT on a server that is CockroachDB (`cockroach`) or not: is the outcome unknown?
/// [`is_commit_outcome_unknown`] anywhere; on CockroachDB also 57014, which can arrive after the
/// transaction committed, while its schema-change jobs go on (cockroachdb/cockroach#128474).
pub fn commit_outcome_unknown(e: &tokio_postgres::Error, cockroach: bool) -> bool {
    is_commit_outcome_unknown(e) || (cockroach && is_query_canceled(e))
}

/// An autocommitted statement that can start a schema-change job failed with `e`: may it have
/// committed anyway? On CockroachDB a 57014 can come after the DDL committed, during the wait
/// for its job (cockroachdb/cockroach#128474); on PostgreSQL a cancelled statement rolled back.
pub fn autocommit_ddl_outcome_unknown(e: &tokio_postgres::Error, cockroach: bool) -> bool {
    cockroach && is_query_canceled(e)
}

/// SQLSTATE 57000 (operator_intervention): how CockroachDB refuses a schema change on a table
/// whose `schema_locked` storage parameter is set ("schema changes are disallowed on table
/// ... because it is locked", `logic_test/schema_locked`): always with the legacy schema
/// changer (every DDL of a multi-statement transaction), and with the declarative one once
/// `sql.schema.auto_unlock.enabled` is false (cockroachdb/cockroach#166246).
pub fn is_schema_locked_code(code: &str) -> bool {
    code == SqlState::OPERATOR_INTERVENTION.code()
}

/// An object of that name is already there: a relation (42P07), a type or other object
/// (42710), a column (42701), a database (42P04), or a catalog row (23505, PostgreSQL's
/// catalog unique indexes such as `pg_type_typname_nsp_index` and `pg_database_datname_index`).
/// What a creator sees when a concurrent creator of the same object committed first.
pub fn is_duplicate(code: &str) -> bool {
    [
        SqlState::DUPLICATE_TABLE.code(),
        SqlState::DUPLICATE_OBJECT.code(),
        SqlState::DUPLICATE_COLUMN.code(),
        SqlState::DUPLICATE_DATABASE.code(),
        SqlState::UNIQUE_VIOLATION.code(),
    ]
    .contains(&code)
}

/// During bookkeeping setup (creating our tables, inserting the lease row, adopting a three-column
/// table): another runner did the same thing at the same moment and won, so re-running the
/// idempotent statements settles it.
///
/// PostgreSQL's `IF NOT EXISTS` checks are not atomic against a concurrent creator: both pass
/// the check, and the loser fails on a catalog unique index once the winner commits (23505), or
/// on the later name checks (42P07 relation, 42710 the table's row type, 42701 a column). A
/// multi-statement batch is one implicit transaction there, so a race on its second statement
/// undoes the first: re-running the whole batch is what makes it right.
/// CockroachDB answers the same race with 40001 (a serializable conflict on the namespace or
/// descriptor), or, when its conditional namespace write fails, with 42P07 ("relation already
/// exists") or 42710 ("object already exists"). All of these are [`is_duplicate`] or 40001.
///
/// A permanent conflict (say a composite type already named `_migrations_lease`) keeps
/// answering 42710; the bounded re-check (`backoff::setup_race`) then gives up and it fails
/// like any other setup error.
pub fn is_setup_race(code: &str) -> bool {
    is_duplicate(code) || code == SqlState::T_R_SERIALIZATION_FAILURE.code()
}

/// The table does not exist (yet): read as empty.
pub fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

/// A column does not exist: a ledger made by an older tool, to be adopted.
pub fn is_undefined_column(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| is_undefined_column_code(c.code()))
}

/// [`is_undefined_column`] on the code alone (42703): also a lease table made by an earlier
/// version, without the acquisition's owner columns.
pub fn is_undefined_column_code(code: &str) -> bool {
    code == SqlState::UNDEFINED_COLUMN.code()
}

/// A session setting this server does not know or will not change at run time (an older
/// CockroachDB without `autocommit_before_ddl`): skip it.
pub fn is_unknown_setting(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_OBJECT)
        || e.code() == Some(&SqlState::CANT_CHANGE_RUNTIME_PARAM)
}

/// An introspection surface (a `crdb_internal` table, `SHOW JOBS`) this server or user does
/// not offer: no privilege, or gated internals (42501, "Access to crdb_internal and system is
/// restricted" while `allow_unsafe_internals` is off, `pkg/sql/unsafesql`), a table, column, function or object
/// this version lacks (42P01, 42703, 42883, 42704), a statement it cannot parse (42601, or a
/// PostgreSQL dressed as CockroachDB), or a feature it does not support (0A000). Waiting will
/// not change it: the caller says so and does without.
pub fn is_surface_refused(e: &tokio_postgres::Error) -> bool {
    code(e).is_some_and(is_surface_refused_code)
}

/// [`is_surface_refused`] on the code alone.
pub fn is_surface_refused_code(code: &str) -> bool {
    [
        SqlState::INSUFFICIENT_PRIVILEGE.code(),
        SqlState::UNDEFINED_TABLE.code(),
        SqlState::UNDEFINED_COLUMN.code(),
        SqlState::UNDEFINED_FUNCTION.code(),
        SqlState::UNDEFINED_OBJECT.code(),
        SqlState::SYNTAX_ERROR.code(),
        SqlState::FEATURE_NOT_SUPPORTED.code(),
    ]
    .contains(&code)
}

/// What creating the URL's database should do with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDatabase {
    /// A concurrent creator won: the database is there.
    Exists,
    /// No privilege to create databases: the credentials are wrong for this job (exit 21).
    Denied,
    /// The server went away, is shutting down or full, or CockroachDB restarted us: retry.
    Transient,
    /// Any other refusal (a bad name, ...): waiting will not change it (exit 20).
    Refused,
}

/// Classifies a failed `CREATE DATABASE` by its SQLSTATE (`None`: no SQLSTATE, the connection
/// broke under us).
pub fn create_database(code: Option<&str>) -> CreateDatabase {
    match code {
        // PostgreSQL: 42P04, or 23505 on `pg_database_datname_index` when the winner commits
        // while we insert; CockroachDB: 42P04, or 42710 "object already exists".
        Some(c) if is_duplicate(c) => CreateDatabase::Exists,
        Some(c) if c == SqlState::INSUFFICIENT_PRIVILEGE.code() => CreateDatabase::Denied,
        Some(c)
            if c.starts_with("08")
                || c.starts_with("57")
                || c == SqlState::TOO_MANY_CONNECTIONS.code()
                || c == SqlState::T_R_SERIALIZATION_FAILURE.code() =>
        {
            CreateDatabase::Transient
        }
        Some(_) => CreateDatabase::Refused,
        None => CreateDatabase::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_class() {
        for c in ["08000", "08006", "08P01", "57P01", "57P02", "57P03"] {
            assert!(is_connection_class(c), "{c}");
        }
        for c in ["57014", "40001", "XXA00", "42P01"] {
            assert!(!is_connection_class(c), "{c}");
        }
    }

    #[test]
    fn lock_timeout_is_55p03_only() {
        assert!(is_lock_timeout_code("55P03"));
        for c in ["55000", "55006", "40001", "40P01", "57014"] {
            assert!(!is_lock_timeout_code(c), "{c}");
        }
    }

    #[test]
    fn schema_locked_is_57000_only() {
        assert!(is_schema_locked_code("57000"));
        for c in ["57014", "57P01", "55P03", "42501"] {
            assert!(!is_schema_locked_code(c), "{c}");
        }
    }

    #[test]
    fn setup_races_are_duplicates_and_restarts_only() {
        for c in ["42P07", "42710", "42701", "42P04", "23505", "40001"] {
            assert!(is_setup_race(c), "{c}");
        }
        // No permission, a syntax error, a full disk, a deadlock, a lock timeout, an unknown
        // outcome: real failures.
        for c in [
            "42501", "42601", "53100", "XXA00", "40003", "40P01", "55P03", "55000",
        ] {
            assert!(!is_setup_race(c), "{c}");
        }
        // A restart is a race during setup, but creating a database after one must re-check
        // from scratch: it is not "the database exists".
        assert!(!is_duplicate("40001"));
    }

    #[test]
    fn refused_surfaces_are_privilege_and_missing_things_never_connection_or_retry() {
        for c in [
            "42501", "42P01", "42703", "42883", "42704", "42601", "0A000",
        ] {
            assert!(is_surface_refused_code(c), "{c}");
        }
        for c in ["08006", "57P01", "40001", "57014", "XX000", "53200"] {
            assert!(!is_surface_refused_code(c), "{c}");
        }
    }

    #[test]
    fn create_database_verdicts() {
        assert_eq!(create_database(Some("42P04")), CreateDatabase::Exists);
        assert_eq!(create_database(Some("23505")), CreateDatabase::Exists);
        assert_eq!(create_database(Some("42710")), CreateDatabase::Exists);
        assert_eq!(create_database(Some("42501")), CreateDatabase::Denied);
        for c in ["08006", "57P01", "53300", "40001"] {
            assert_eq!(create_database(Some(c)), CreateDatabase::Transient, "{c}");
        }
        assert_eq!(create_database(Some("42602")), CreateDatabase::Refused);
        assert_eq!(create_database(None), CreateDatabase::Transient);
    }
}

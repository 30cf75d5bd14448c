//! The one error type of the crate. Variants carry the version, file, variable or SQLSTATE at
//! fault (with the underlying error as `source` where there is one) and never the password.
//! Which exit code each variant means is decided in one place: the table in `exit.rs`.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::refusal::{Disagreement, Refusal};
use crate::source::Problem;

/// Everything that can stop an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or malformed; `name` is the variable or option.
    #[error("{name}: {message}")]
    Config {
        /// The environment variable or option at fault.
        name: String,
        /// What is wrong and how to fix it (never a secret).
        message: String,
    },
    /// `verify --strict` found a warning of severity `risk`.
    #[error(
        "verify --strict: a warning of severity risk was found (see above): fix the file, or mark a deliberate breaking change `-- @CONTRACT`"
    )]
    StrictVerify,
    /// `test` found undos that fail or do not restore the schema (listed above).
    #[error("test: {failed} of {checked} migration(s) failed the undo round trip (see above)")]
    UndoTest {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        checked: usize,
    },
    /// The async runtime could not be started.
    #[error("runtime: cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The SIGTERM/SIGINT handlers could not be installed.
    #[error("signals: cannot install SIGTERM/SIGINT handlers")]
    Signals,
    /// The clock gave a time that cannot be written as a version stamp.
    #[error("clock: {0}")]
    Clock(#[source] time::error::Format),
    /// The migration set has problems; all of them are listed.
    #[error("{} problem(s) in the migration files:\n{}", .0.len(), list(.0))]
    Source(Vec<Problem>),
    /// The migrations directory is another tool's layout (convert it with `import`).
    #[error("{0}")]
    ForeignLayout(String),
    /// `import` cannot convert these files faithfully; nothing was written.
    #[error("{} problem(s) importing, nothing was written:\n{}", .0.len(), list(.0))]
    Import(Vec<crate::import::ImportProblem>),
    /// DATABASE_URL (or a file it names) is malformed; `param` names the part at fault.
    #[error("DATABASE_URL: {param}: {message}")]
    Url {
        /// The URL part or query parameter at fault.
        param: String,
        /// What is wrong (never the password).
        message: String,
    },
    /// The server did not become ready within the wait timeout.
    #[error("database not ready after {attempts} attempts in {waited:?}: {last}")]
    Unreachable {
        /// How many attempts were made.
        attempts: u32,
        /// How long we waited.
        waited: Duration,
        /// The last failure.
        last: String,
    },
    /// Authentication was rejected.
    #[error("authentication rejected: {0}")]
    Auth(String),
    /// TLS was rejected (certificate verification, or the server demands TLS).
    #[error("TLS rejected: {0}")]
    Tls(String),
    /// The database named in the URL does not exist.
    #[error("database \"{0}\" does not exist (set MIGRATE_CREATE_DATABASE=true to create it)")]
    NoDatabase(String),
    /// The connection to the database was lost mid-operation.
    #[error("{context}: connection lost: {message}")]
    ConnectionLost {
        /// What we were doing.
        context: String,
        /// What the driver or the server said.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    /// The lease was not acquired within `MIGRATE_LEASE_TIMEOUT`.
    #[error(
        "lease not acquired within {} ms: held by {holder} (fence {fence}) until {expires}; if that runner is gone it expires by itself, or run `crdb-migrate unlock --force`", .waited.as_millis()
    )]
    LeaseTimeout {
        /// How long we waited.
        waited: Duration,
        /// Who holds it.
        holder: String,
        /// Their fence token.
        fence: i64,
        /// When it expires (database time).
        expires: String,
    },
    /// `wait --version` did not see its version applied in time.
    #[error(
        "version {version} not applied within {} ms ({missing} migration(s) up to it still pending)", .waited.as_millis()
    )]
    WaitTimeout {
        /// The version waited for.
        version: i64,
        /// How long we waited.
        waited: Duration,
        /// How many migrations up to it were not applied.
        missing: usize,
    },
    /// Our lease expired or was taken over while we worked; nothing more was committed.
    #[error("lease lost (fence {fence}): {detail}; the current migration was rolled back")]
    LeaseLost {
        /// Our fence token.
        fence: i64,
        /// What we observed.
        detail: String,
    },
    /// SQLSTATE 40001 kept coming back.
    #[error(
        "migration {version}: serialization failures (SQLSTATE 40001) on all {attempts} attempts; what failed did not take effect and a rerun will try it again"
    )]
    RetriesExhausted {
        /// The migration's version (0 for bookkeeping statements).
        version: i64,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A migration's SQL failed; its transaction was rolled back.
    #[error("{0}")]
    MigrationFailed(Box<SqlFailure>),
    /// A migration was left partly applied and was marked dirty.
    #[error(
        "migration {version} ({}) may be partly applied and is marked dirty: {message}. Check the database by hand, then run `crdb-migrate repair --version {version} --mark-applied` or `--mark-not-applied`", .file.display()
    )]
    PartiallyApplied {
        /// The migration's version.
        version: i64,
        /// Its file.
        file: PathBuf,
        /// What happened.
        message: String,
    },
    /// The database disagrees with the migration files.
    #[error("the database disagrees with the migration files:\n{}", lines(.0))]
    Disagreement(Vec<Disagreement>),
    /// A request refused before anything ran (bad target, missing undo, ...).
    #[error("{0}")]
    Refused(Refusal),
    /// A database error outside a migration's own SQL (bookkeeping).
    #[error("{context}: {message}")]
    Database {
        /// What we were doing.
        context: String,
        /// SQLSTATE, when the server sent one.
        sqlstate: Option<SqlState>,
        /// The error, as the server worded it.
        message: String,
        /// The driver's error, when there is one.
        #[source]
        source: Option<tokio_postgres::Error>,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A CockroachDB schema-change job on a table of the migration in flight is paused,
    /// failed or reverting (it outlived the client that started it).
    #[error(
        "schema-change job {id} is {status} on a table this migration changes: {description}; inspect it with `SHOW JOB {id}` (resume a paused one with `RESUME JOB {id}`, or let a reverting one finish), then rerun"
    )]
    BackgroundJob {
        /// The job id.
        id: i64,
        /// Its status (`paused`, `failed`, `reverting`, ...).
        status: String,
        /// The statement that started it.
        description: String,
    },
    /// CockroachDB schema-change jobs on our tables were still running after
    /// `MIGRATE_JOB_WAIT_TIMEOUT`.
    #[error(
        "schema-change job {id} still {status} after {} ms (MIGRATE_JOB_WAIT_TIMEOUT): {description}; follow it with `SHOW JOB {id}`; a rerun waits again", .waited.as_millis()
    )]
    JobWaitTimeout {
        /// The first job still running.
        id: i64,
        /// Its status.
        status: String,
        /// The statement that started it.
        description: String,
        /// How long we waited.
        waited: Duration,
    },
    /// SIGTERM or SIGINT arrived (or the operation was cancelled); we cleaned up.
    #[error("stopped by signal after cleaning up")]
    Terminated,
}

/// What the server said when a migration's SQL failed, and where in the file.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({}) failed{}: {}SQLSTATE {}: {message}{}", .file.display(), outcome(*.transactional), at(.statement), code(.sqlstate), extra(.detail, .hint))]
pub struct SqlFailure {
    /// The migration's version.
    pub version: i64,
    /// Its file.
    pub file: PathBuf,
    /// The SQLSTATE; `None` when the failure did not come from the server (shown as `-`).
    pub sqlstate: Option<SqlState>,
    /// The server's message.
    pub message: String,
    /// The server's detail, if any.
    pub detail: Option<String>,
    /// The server's hint, if any.
    pub hint: Option<String>,
    /// The statement that failed, when one did (not COMMIT).
    pub statement: Option<FailedStatement>,
    /// It ran in a transaction, which was rolled back (else: a `@NO_TRANSACTION` file whose
    /// first statement failed, so nothing of it took effect).
    pub transactional: bool,
}

/// Which statement of a migration failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStatement {
    /// 1-based index within its section.
    pub index: usize,
    /// How many statements the section has.
    pub total: usize,
    /// `forward` or `undo`.
    pub section: &'static str,
    /// The 1-based line in the file: where the server's error position points when it gave
    /// one, else where the statement starts.
    pub line: usize,
    /// The statement on one line, shortened.
    pub excerpt: String,
}

impl std::fmt::Display for FailedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statement {} of {} ({}, line {}: `{}`)",
            self.index, self.total, self.section, self.line, self.excerpt
        )
    }
}

fn outcome(transactional: bool) -> &'static str {
    if transactional {
        " and was rolled back"
    } else {
        " before any of its statements took effect"
    }
}

fn code(sqlstate: &Option<SqlState>) -> &str {
    sqlstate.as_ref().map_or("-", SqlState::code)
}

fn at(statement: &Option<FailedStatement>) -> String {
    statement
        .as_ref()
        .map(|s| format!("{s}: "))
        .unwrap_or_default()
}

fn list(problems: &[impl std::fmt::Display]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lines(d: &[Disagreement]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn extra(detail: &Option<String>, hint: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(d) = detail {
        s.push_str(&format!(" (detail: {d})"));
    }
    if let Some(h) = hint {
        s.push_str(&format!(" (hint: {h})"));
    }
    s
}

/// The server's words for an error (its message), or the driver's when the server said nothing.
pub(crate) fn server_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

impl Error {
    /// Wraps a tokio-postgres error met outside a migration's own SQL: a lost connection is
    /// [`Error::ConnectionLost`], anything else [`Error::Database`].
    pub fn db(context: impl Into<String>, e: tokio_postgres::Error) -> Error {
        let context = context.into();
        let message = server_message(&e);
        if crate::sqlstate::is_connection_lost(&e) {
            return Error::ConnectionLost {
                context,
                message,
                source: Some(e),
            };
        }
        Error::Database {
            context,
            sqlstate: e.code().cloned(),
            message,
            source: Some(e),
        }
    }

    /// The connection was lost (so a reconnect, not an operator, may fix it).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. })
    }

    /// The SQLSTATE the server sent, when it sent one.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            Error::Database { sqlstate, .. } => sqlstate.as_ref(),
            Error::MigrationFailed(f) => f.sqlstate.as_ref(),
            _ => None,
        }
    }
}

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

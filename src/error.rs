//! The one error type of a run. Each variant maps onto exactly one exit code of SPEC §6
//! (`Error::exit`), carries the version, file or variable at fault, and never the password.

use std::path::PathBuf;

use crate::connect::ConnectError;
use crate::exit::Exit;
use crate::source::Problem;

/// Everything that can stop a run.
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
    /// The migration set has problems; all of them are listed.
    #[error("{} problem(s) in the migration files:\n{}", .0.len(), list(.0))]
    Source(Vec<Problem>),
    /// Connecting failed (unreachable, authentication, TLS, bad URL, missing database).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The lease was not acquired within `MIGRATE_LEASE_TIMEOUT`.
    #[error(
        "lease not acquired within {waited_ms} ms: held by {holder} (fence {fence}) until {expires}; if that runner is gone it expires by itself, or run `crdb-migrate unlock --force`"
    )]
    LeaseTimeout {
        /// How long we waited.
        waited_ms: u128,
        /// Who holds it.
        holder: String,
        /// Their fence token.
        fence: i64,
        /// When it expires (database time).
        expires: String,
    },
    /// `wait --version` did not see its version applied in time.
    #[error(
        "version {version} not applied within {waited_ms} ms ({missing} migration(s) up to it still pending)"
    )]
    WaitTimeout {
        /// The version waited for.
        version: i64,
        /// How long we waited.
        waited_ms: u128,
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
        "migration {version} ({file}) may be partly applied and is marked dirty: {message}. Check the database by hand, then run `crdb-migrate repair --version {version} --mark-applied` or `--mark-not-applied`"
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
    #[error("the database disagrees with the migration files:\n{}", .0.join("\n"))]
    Disagreement(Vec<String>),
    /// A request the plan refuses (bad target, missing undo) — bad input.
    #[error("{0}")]
    Refused(String),
    /// A database error outside a migration (bookkeeping).
    #[error("{context}: {message}")]
    Database {
        /// What we were doing.
        context: String,
        /// SQLSTATE, when the server sent one.
        sqlstate: Option<String>,
        /// The error.
        message: String,
        /// The connection broke (so the server is unreachable, not our input at fault).
        connection_lost: bool,
    },
    /// A file could not be written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// SIGTERM or SIGINT arrived; we cleaned up.
    #[error("stopped by signal after cleaning up")]
    Terminated,
}

/// What the server said when a migration's SQL failed.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({}) failed and was rolled back: SQLSTATE {sqlstate}: {message}{}", .file.display(), extra(.detail, .hint))]
pub struct SqlFailure {
    /// The migration's version.
    pub version: i64,
    /// Its file.
    pub file: PathBuf,
    /// The SQLSTATE.
    pub sqlstate: String,
    /// The server's message.
    pub message: String,
    /// The server's detail, if any.
    pub detail: Option<String>,
    /// The server's hint, if any.
    pub hint: Option<String>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
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

impl Error {
    /// The exit code for this error (SPEC §6).
    pub fn exit(&self) -> Exit {
        match self {
            Error::Config { .. } | Error::Source(_) | Error::Refused(_) | Error::Io { .. } => {
                Exit::BadInput
            }
            Error::Connect(c) => c.exit(),
            Error::LeaseTimeout { .. } | Error::WaitTimeout { .. } => Exit::Timeout,
            Error::LeaseLost { .. } => Exit::LeaseLost,
            Error::RetriesExhausted { .. } => Exit::RetriesExhausted,
            Error::MigrationFailed(_) => Exit::MigrationFailed,
            Error::PartiallyApplied { .. } => Exit::PartiallyApplied,
            Error::Disagreement(_) => Exit::Disagreement,
            Error::Database {
                connection_lost, ..
            } => {
                if *connection_lost {
                    Exit::Unreachable
                } else {
                    Exit::MigrationFailed
                }
            }
            Error::Terminated => Exit::Terminated,
        }
    }

    /// Wraps a tokio-postgres error met outside a migration's own SQL.
    pub fn db(context: impl Into<String>, e: &tokio_postgres::Error) -> Error {
        let sqlstate = e.code().map(|c| c.code().to_string());
        let message = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        Error::Database {
            context: context.into(),
            connection_lost: e.is_closed() || sqlstate.as_deref().is_some_and(is_connection_class),
            sqlstate,
            message,
        }
    }
}

/// SQLSTATEs meaning the connection or server went away (class 08, 57P01..57P03).
pub fn is_connection_class(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

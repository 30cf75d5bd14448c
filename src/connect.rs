//! Connecting: the DATABASE_URL, TLS, waiting for the server with backoff, and telling
//! transient failures (retry) from permanent ones (stop).
//!
//! STUB: plain TCP only for now; the signatures below are the contract.

use std::time::Duration;

use tokio_postgres::Client;

/// Which server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Flavour {
    /// CockroachDB.
    CockroachDB,
    /// PostgreSQL (or anything else speaking its protocol).
    PostgreSQL,
}

/// What `SELECT version()` told us.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// The flavour.
    pub flavour: Flavour,
    /// The full `version()` string.
    pub version: String,
}

/// A parsed DATABASE_URL. `Debug` never shows the password.
#[derive(Clone)]
pub struct DbUrl {
    config: tokio_postgres::Config,
    redacted: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// DATABASE_URL (or a file it names) is malformed; `param` names the part at fault.
    #[error("DATABASE_URL: {param}: {message}")]
    Config {
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
}

impl DbUrl {
    /// Parses a DATABASE_URL.
    pub fn parse(url: &str) -> Result<DbUrl, ConnectError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| ConnectError::Config {
            param: "url".into(),
            message: "not a valid postgresql:// URL".into(),
        })?;
        Ok(DbUrl {
            config,
            redacted: "postgresql://***".into(),
        })
    }

    /// The URL with the password replaced by `***`, for logs.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The database name in the URL.
    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }
}

/// Waits until the server accepts us and answers `SELECT version()`, retrying transient
/// failures with backoff for up to `wait_timeout`. With `create_database`, a missing database
/// is created first.
pub async fn wait_and_connect(
    url: &DbUrl,
    _wait_timeout: Duration,
    _create_database: bool,
) -> Result<(Client, ServerInfo), ConnectError> {
    let (client, connection) = url
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| ConnectError::Unreachable {
            attempts: 1,
            waited: Duration::ZERO,
            last: e.to_string(),
        })?;
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .map_err(|e| ConnectError::Unreachable {
            attempts: 1,
            waited: Duration::ZERO,
            last: e.to_string(),
        })?;
    let version: String = row.get(0);
    let flavour = if version.contains("CockroachDB") {
        Flavour::CockroachDB
    } else {
        Flavour::PostgreSQL
    };
    Ok((client, ServerInfo { flavour, version }))
}

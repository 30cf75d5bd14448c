//! Configuration: the environment (read with envy), overridden by command-line options of the
//! same meaning, validated once into a [`Config`]: the settings of the library's runs. Every
//! malformed value is an error naming its variable; the DATABASE_URL's password never reaches
//! `Debug`, errors or logs. A leaf: it depends on the value types it validates (durations,
//! table name, phase) and on the error type, not on the code that uses it. Settings only the
//! binary reads (logging, termination message, shutdown grace) are the binary's own.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::phase::Phase;
use crate::table_name::TableName;

mod env;
mod fleet;
mod parse;
mod vars;

use env::Env;
pub use fleet::{FleetSettings, TargetSource};
pub use parse::{DEFAULT_LOCK_RETRIES, OnDrift, parse_version};
use vars::{environment_var, var};

/// Values given on the command line; each overrides the environment variable of the same meaning.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--migrations-dir`.
    pub migrations_dir: Option<PathBuf>,
    /// `--environment`.
    pub environment: Option<String>,
    /// `--table`.
    pub table: Option<String>,
    /// `--wait-timeout`.
    pub wait_timeout: Option<String>,
    /// `--lease-ttl`.
    pub lease_ttl: Option<String>,
    /// `--lease-timeout`.
    pub lease_timeout: Option<String>,
    /// `--holder`.
    pub holder: Option<String>,
    /// `--targets` (a fleet's targets file).
    pub targets_file: Option<PathBuf>,
}

/// The validated configuration of a run.
#[derive(Clone)]
pub struct Config {
    database_url: Option<String>,
    /// Where the migration files are.
    pub migrations_dir: PathBuf,
    /// The environment sub-directory to merge, if any.
    pub environment: Option<String>,
    /// The target version for `migrate` (default: the newest file).
    pub target_version: Option<i64>,
    /// The ledger table's name (validated: only [`TableName::new`] makes one).
    pub table: TableName,
    /// How long to wait for the database.
    pub wait_timeout: Duration,
    /// The lease's time to live.
    pub lease_ttl: Duration,
    /// How long to wait for the lease.
    pub lease_timeout: Duration,
    /// Who we are in the lease.
    pub holder: String,
    /// The session statement timeout, if any.
    pub statement_timeout: Option<Duration>,
    /// Accept applied versions unknown to this image.
    pub allow_newer_schema: bool,
    /// Apply pending files older than the newest applied one.
    pub allow_out_of_order: bool,
    /// Create the URL's database when it does not exist.
    pub create_database: bool,
    /// Migrate even when the ledger is empty and another tool's history table has rows.
    pub ignore_foreign_history: bool,
    /// `MIGRATE_PROGRESS_INTERVAL` (default 30s): how often a running migration statement
    /// logs `migration.progress`; `None` (`0`) turns it off.
    pub progress_interval: Option<Duration>,
    /// `MIGRATE_JOB_WAIT_TIMEOUT` (default 10m): how long `migrate` waits at start for running
    /// CockroachDB schema-change jobs on our tables before giving up (exit 11).
    pub job_wait_timeout: Duration,
    /// `MIGRATE_LOCK_TIMEOUT`: the default `lock_timeout` of a migration (a file's
    /// `-- @LOCK_TIMEOUT` overrides it); `None`: the server's.
    pub lock_timeout: Option<Duration>,
    /// `MIGRATE_LOCK_RETRIES` (default 5): how many times a transactional migration that hit
    /// its lock timeout (SQLSTATE 55P03) is rolled back and tried again.
    pub lock_retries: u32,
    /// `MIGRATE_PHASE` (`expand`, `contract`); `None`: apply every pending migration.
    pub phase: Option<Phase>,
    /// The fleet's targets and scheduling; no targets: one database (`DATABASE_URL`).
    pub fleet: FleetSettings,
    /// `MIGRATE_ON_DRIFT` (default warn): what `migrate` does when the schema was changed by
    /// hand since the last run that did work.
    pub on_drift: OnDrift,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("migrations_dir", &self.migrations_dir)
            .field("environment", &self.environment)
            .field("target_version", &self.target_version)
            .field("table", &self.table)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment, then applies `overrides`.
    pub fn from_env(overrides: Overrides) -> Result<Config> {
        Config::from_vars(std::env::vars(), overrides)
    }

    /// Builds a configuration from the given variables (so tests need not touch the process
    /// environment), then applies `overrides`.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        o: Overrides,
    ) -> Result<Config> {
        let mut env = Env::read(vars)?;
        let migrations_dir = env.apply(o);
        // Checked in this order: of several malformed values, the first is the one reported.
        let (target_version, table) = env.target()?;
        let waits = env.waits()?;
        let holder = env.holder();
        let environment = environment_var(env.environment.take())?;
        let timeouts = env.timeouts()?;
        let flags = env.flags()?;
        let progress = env.progress()?;
        let locks = env.locks()?;
        let phase = var("MIGRATE_PHASE", env.migrate_phase.take(), Phase::parse)?;
        let fleet = env.fleet()?;
        let on_drift = var(
            "MIGRATE_ON_DRIFT",
            env.migrate_on_drift.take(),
            parse::parse_on_drift,
        )?
        .unwrap_or_default();
        Ok(Config {
            database_url: env.database_url.take(),
            migrations_dir,
            environment,
            target_version,
            table,
            wait_timeout: waits.wait_timeout,
            lease_ttl: waits.lease_ttl,
            lease_timeout: timeouts.lease_timeout,
            holder,
            statement_timeout: timeouts.statement_timeout,
            allow_newer_schema: flags.allow_newer_schema,
            allow_out_of_order: flags.allow_out_of_order,
            create_database: flags.create_database,
            ignore_foreign_history: flags.ignore_foreign_history,
            progress_interval: progress.interval,
            job_wait_timeout: progress.job_wait_timeout,
            lock_timeout: locks.lock_timeout,
            lock_retries: locks.lock_retries,
            phase,
            fleet,
            on_drift,
        })
    }

    /// DATABASE_URL as given (the connection code parses it, once per run); `None` when unset.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// This configuration for another database: one target of a fleet.
    pub fn with_database_url(&self, url: String) -> Config {
        Config {
            database_url: Some(url),
            ..self.clone()
        }
    }

    /// A configuration with defaults for everything, for library callers and tests.
    pub fn new(database_url: Option<String>, migrations_dir: impl Into<PathBuf>) -> Config {
        let mut c = Config::from_vars(Vec::new(), Overrides::default())
            .unwrap_or_else(|_| unreachable!("defaults are valid"));
        c.database_url = database_url;
        c.migrations_dir = migrations_dir.into();
        c
    }
}

#[cfg(test)]
mod tests;

//! The raw environment (read with envy), the command-line overrides merged into it, and the
//! readers of each group of settings, in the order `Config::from_vars` checks them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Overrides;
use super::parse::{DEFAULT_LOCK_RETRIES, parse_retries, parse_version};
use super::vars::{default_holder, duration_var, flag_var, optional_duration_var, var};
use crate::error::{Error, Result};
use crate::store::TableName;

/// The raw environment, every value a string so that we, not serde, word the errors.
#[derive(Deserialize, Default)]
pub(super) struct Env {
    pub database_url: Option<String>,
    pub migrations_dir: Option<String>,
    pub environment: Option<String>,
    pub migrate_target_version: Option<String>,
    pub migrate_table: Option<String>,
    pub migrate_wait_timeout: Option<String>,
    pub migrate_lease_ttl: Option<String>,
    pub migrate_lease_timeout: Option<String>,
    pub migrate_holder: Option<String>,
    pub pod_name: Option<String>,
    pub hostname: Option<String>,
    pub migrate_statement_timeout: Option<String>,
    pub migrate_allow_newer_schema: Option<String>,
    pub migrate_allow_out_of_order: Option<String>,
    pub migrate_create_database: Option<String>,
    pub migrate_ignore_foreign_history: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub rust_log: Option<String>,
    pub migrate_termination_log: Option<String>,
    pub migrate_shutdown_grace: Option<String>,
    pub migrate_progress_interval: Option<String>,
    pub migrate_job_wait_timeout: Option<String>,
    pub migrate_lock_timeout: Option<String>,
    pub migrate_lock_retries: Option<String>,
    pub migrate_phase: Option<String>,
}

impl Env {
    /// Reads `vars`; empty values count as unset, as in a pod spec that leaves a value blank.
    pub fn read(vars: impl IntoIterator<Item = (String, String)>) -> Result<Env> {
        let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
        envy::from_iter(vars).map_err(|e| Error::Config {
            name: "environment".into(),
            message: e.to_string(),
        })
    }

    /// Puts each command-line value in place of its variable (`--log-level` over `LOG_LEVEL`
    /// over `RUST_LOG`); returns the migrations directory, the one setting that is a path.
    pub fn apply(&mut self, o: Overrides) -> PathBuf {
        let Overrides {
            database_url,
            migrations_dir,
            environment,
            table,
            wait_timeout,
            lease_ttl,
            lease_timeout,
            holder,
            log_format,
            log_level,
        } = o;
        self.database_url = database_url.or(self.database_url.take());
        self.environment = environment.or(self.environment.take());
        self.migrate_table = table.or(self.migrate_table.take());
        self.migrate_wait_timeout = wait_timeout.or(self.migrate_wait_timeout.take());
        self.migrate_lease_ttl = lease_ttl.or(self.migrate_lease_ttl.take());
        self.migrate_lease_timeout = lease_timeout.or(self.migrate_lease_timeout.take());
        self.migrate_holder = holder.or(self.migrate_holder.take());
        self.log_format = log_format.or(self.log_format.take());
        self.log_level = log_level.or(self.log_level.take()).or(self.rust_log.take());
        migrations_dir
            .or(self.migrations_dir.take().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./migrations"))
    }

    /// `MIGRATE_TARGET_VERSION` and `MIGRATE_TABLE`: how far to migrate, and the ledger's name.
    pub fn target(&mut self) -> Result<(Option<i64>, TableName)> {
        let version = var(
            "MIGRATE_TARGET_VERSION",
            self.migrate_target_version.take(),
            parse_version,
        )?;
        let table = var("MIGRATE_TABLE", self.migrate_table.take(), TableName::new)?;
        Ok((version, table.unwrap_or_default()))
    }

    /// `MIGRATE_WAIT_TIMEOUT` (default 5m) and `MIGRATE_LEASE_TTL` (default 30s, at least 1s).
    pub fn waits(&mut self) -> Result<(Duration, Duration)> {
        let wait_timeout = duration_var(
            "MIGRATE_WAIT_TIMEOUT",
            self.migrate_wait_timeout.take(),
            Duration::from_secs(300),
        )?;
        let lease_ttl = duration_var(
            "MIGRATE_LEASE_TTL",
            self.migrate_lease_ttl.take(),
            Duration::from_secs(30),
        )?;
        if lease_ttl < Duration::from_secs(1) {
            return Err(Error::Config {
                name: "MIGRATE_LEASE_TTL".into(),
                message: "must be at least 1s".into(),
            });
        }
        Ok((wait_timeout, lease_ttl))
    }

    /// Who we are in the lease: `MIGRATE_HOLDER`, else `POD_NAME`, else host and pid.
    pub fn holder(&mut self) -> String {
        self.migrate_holder
            .take()
            .or(self.pod_name.take())
            .unwrap_or_else(|| default_holder(self.hostname.take()))
    }

    /// `MIGRATE_SHUTDOWN_GRACE` (default 20s), `MIGRATE_LEASE_TIMEOUT` (default 10m) and
    /// `MIGRATE_STATEMENT_TIMEOUT` (default none), in that order.
    pub fn timeouts(&mut self) -> Result<(Duration, Duration, Option<Duration>)> {
        let shutdown_grace = duration_var(
            "MIGRATE_SHUTDOWN_GRACE",
            self.migrate_shutdown_grace.take(),
            Duration::from_secs(20),
        )?;
        let lease_timeout = duration_var(
            "MIGRATE_LEASE_TIMEOUT",
            self.migrate_lease_timeout.take(),
            Duration::from_secs(600),
        )?;
        let statement_timeout = optional_duration_var(
            "MIGRATE_STATEMENT_TIMEOUT",
            self.migrate_statement_timeout.take(),
        )?;
        Ok((shutdown_grace, lease_timeout, statement_timeout))
    }

    /// The switches, in this order: `MIGRATE_ALLOW_NEWER_SCHEMA`, `MIGRATE_ALLOW_OUT_OF_ORDER`,
    /// `MIGRATE_CREATE_DATABASE`, `MIGRATE_IGNORE_FOREIGN_HISTORY`.
    pub fn flags(&mut self) -> Result<[bool; 4]> {
        Ok([
            flag_var(
                "MIGRATE_ALLOW_NEWER_SCHEMA",
                self.migrate_allow_newer_schema.take(),
            )?,
            flag_var(
                "MIGRATE_ALLOW_OUT_OF_ORDER",
                self.migrate_allow_out_of_order.take(),
            )?,
            flag_var(
                "MIGRATE_CREATE_DATABASE",
                self.migrate_create_database.take(),
            )?,
            flag_var(
                "MIGRATE_IGNORE_FOREIGN_HISTORY",
                self.migrate_ignore_foreign_history.take(),
            )?,
        ])
    }

    /// `MIGRATE_PROGRESS_INTERVAL` (default 30s, `0`: off) and `MIGRATE_JOB_WAIT_TIMEOUT`
    /// (default 10m).
    pub fn progress(&mut self) -> Result<(Option<Duration>, Duration)> {
        let progress_interval = duration_var(
            "MIGRATE_PROGRESS_INTERVAL",
            self.migrate_progress_interval.take(),
            Duration::from_secs(30),
        )?;
        let job_wait_timeout = duration_var(
            "MIGRATE_JOB_WAIT_TIMEOUT",
            self.migrate_job_wait_timeout.take(),
            Duration::from_secs(600),
        )?;
        Ok((
            Some(progress_interval).filter(|d| !d.is_zero()),
            job_wait_timeout,
        ))
    }

    /// `MIGRATE_LOCK_TIMEOUT` (default: the server's) and `MIGRATE_LOCK_RETRIES` (default 5).
    pub fn locks(&mut self) -> Result<(Option<Duration>, u32)> {
        let lock_timeout =
            optional_duration_var("MIGRATE_LOCK_TIMEOUT", self.migrate_lock_timeout.take())?;
        let lock_retries = var(
            "MIGRATE_LOCK_RETRIES",
            self.migrate_lock_retries.take(),
            parse_retries,
        )?;
        Ok((lock_timeout, lock_retries.unwrap_or(DEFAULT_LOCK_RETRIES)))
    }
}

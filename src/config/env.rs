//! The raw environment (read with envy), the command-line overrides merged into it, and the
//! readers of each group of settings, in the order `Config::from_vars` checks them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Overrides;
use super::fleet::{FleetSettings, RawFleet};
use super::parse::{DEFAULT_LOCK_RETRIES, parse_retries, parse_version};
use super::vars::{default_holder, duration_var, flag_var, optional_duration_var, var};
use crate::error::{Error, Result};
use crate::table_name::TableName;

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
    pub migrate_progress_interval: Option<String>,
    pub migrate_job_wait_timeout: Option<String>,
    pub migrate_lock_timeout: Option<String>,
    pub migrate_lock_retries: Option<String>,
    pub migrate_phase: Option<String>,
    pub migrate_targets_file: Option<String>,
    pub migrate_targets_query: Option<String>,
    pub migrate_parallelism: Option<String>,
    pub migrate_shards: Option<String>,
    pub job_completion_index: Option<String>,
    pub migrate_canary_targets: Option<String>,
    pub migrate_max_failures: Option<String>,
    pub migrate_on_drift: Option<String>,
}

/// `MIGRATE_WAIT_TIMEOUT` and `MIGRATE_LEASE_TTL`.
pub(super) struct Waits {
    pub wait_timeout: Duration,
    pub lease_ttl: Duration,
}

/// `MIGRATE_LEASE_TIMEOUT` and `MIGRATE_STATEMENT_TIMEOUT`.
pub(super) struct Timeouts {
    pub lease_timeout: Duration,
    pub statement_timeout: Option<Duration>,
}

/// The boolean switches, each named (so two cannot be swapped unnoticed).
pub(super) struct Flags {
    pub allow_newer_schema: bool,
    pub allow_out_of_order: bool,
    pub create_database: bool,
    pub ignore_foreign_history: bool,
}

/// `MIGRATE_PROGRESS_INTERVAL` (`None`: off) and `MIGRATE_JOB_WAIT_TIMEOUT`.
pub(super) struct Progress {
    pub interval: Option<Duration>,
    pub job_wait_timeout: Duration,
}

/// `MIGRATE_LOCK_TIMEOUT` and `MIGRATE_LOCK_RETRIES`.
pub(super) struct Locks {
    pub lock_timeout: Option<Duration>,
    pub lock_retries: u32,
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

    /// Puts each command-line value in place of its variable; returns the migrations directory, the one setting that is a path.
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
            targets_file,
        } = o;
        self.migrate_targets_file = targets_file
            .map(|p| p.to_string_lossy().into_owned())
            .or(self.migrate_targets_file.take());
        self.database_url = database_url.or(self.database_url.take());
        self.environment = environment.or(self.environment.take());
        self.migrate_table = table.or(self.migrate_table.take());
        self.migrate_wait_timeout = wait_timeout.or(self.migrate_wait_timeout.take());
        self.migrate_lease_ttl = lease_ttl.or(self.migrate_lease_ttl.take());
        self.migrate_lease_timeout = lease_timeout.or(self.migrate_lease_timeout.take());
        self.migrate_holder = holder.or(self.migrate_holder.take());
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
    pub fn waits(&mut self) -> Result<Waits> {
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
        Ok(Waits {
            wait_timeout,
            lease_ttl,
        })
    }

    /// Who we are in the lease: `MIGRATE_HOLDER`, else `POD_NAME`, else host and pid.
    pub fn holder(&mut self) -> String {
        self.migrate_holder
            .take()
            .or(self.pod_name.take())
            .unwrap_or_else(|| default_holder(self.hostname.take()))
    }

    /// `MIGRATE_LEASE_TIMEOUT` (default 10m) and `MIGRATE_STATEMENT_TIMEOUT` (default none), in
    /// that order.
    pub fn timeouts(&mut self) -> Result<Timeouts> {
        let lease_timeout = duration_var(
            "MIGRATE_LEASE_TIMEOUT",
            self.migrate_lease_timeout.take(),
            Duration::from_secs(600),
        )?;
        let statement_timeout = optional_duration_var(
            "MIGRATE_STATEMENT_TIMEOUT",
            self.migrate_statement_timeout.take(),
        )?;
        Ok(Timeouts {
            lease_timeout,
            statement_timeout,
        })
    }

    /// The switches, in this order: `MIGRATE_ALLOW_NEWER_SCHEMA`, `MIGRATE_ALLOW_OUT_OF_ORDER`,
    /// `MIGRATE_CREATE_DATABASE`, `MIGRATE_IGNORE_FOREIGN_HISTORY`.
    pub fn flags(&mut self) -> Result<Flags> {
        Ok(Flags {
            allow_newer_schema: flag_var(
                "MIGRATE_ALLOW_NEWER_SCHEMA",
                self.migrate_allow_newer_schema.take(),
            )?,
            allow_out_of_order: flag_var(
                "MIGRATE_ALLOW_OUT_OF_ORDER",
                self.migrate_allow_out_of_order.take(),
            )?,
            create_database: flag_var(
                "MIGRATE_CREATE_DATABASE",
                self.migrate_create_database.take(),
            )?,
            ignore_foreign_history: flag_var(
                "MIGRATE_IGNORE_FOREIGN_HISTORY",
                self.migrate_ignore_foreign_history.take(),
            )?,
        })
    }

    /// `MIGRATE_PROGRESS_INTERVAL` (default 30s, `0`: off) and `MIGRATE_JOB_WAIT_TIMEOUT`
    /// (default 10m).
    pub fn progress(&mut self) -> Result<Progress> {
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
        Ok(Progress {
            interval: Some(progress_interval).filter(|d| !d.is_zero()),
            job_wait_timeout,
        })
    }

    /// The fleet's settings (`MIGRATE_TARGETS_FILE` or `--targets`, `MIGRATE_TARGETS_QUERY`,
    /// `MIGRATE_PARALLELISM`, `MIGRATE_SHARDS`, `JOB_COMPLETION_INDEX`,
    /// `MIGRATE_CANARY_TARGETS`, `MIGRATE_MAX_FAILURES`), in that order.
    pub fn fleet(&mut self) -> Result<FleetSettings> {
        RawFleet {
            file: self.migrate_targets_file.take(),
            query: self.migrate_targets_query.take(),
            parallelism: self.migrate_parallelism.take(),
            shards: self.migrate_shards.take(),
            index: self.job_completion_index.take(),
            canary: self.migrate_canary_targets.take(),
            max_failures: self.migrate_max_failures.take(),
        }
        .validate()
    }

    /// `MIGRATE_LOCK_TIMEOUT` (default: the server's) and `MIGRATE_LOCK_RETRIES` (default 5).
    pub fn locks(&mut self) -> Result<Locks> {
        let lock_timeout =
            optional_duration_var("MIGRATE_LOCK_TIMEOUT", self.migrate_lock_timeout.take())?;
        let lock_retries = var(
            "MIGRATE_LOCK_RETRIES",
            self.migrate_lock_retries.take(),
            parse_retries,
        )?;
        Ok(Locks {
            lock_timeout,
            lock_retries: lock_retries.unwrap_or(DEFAULT_LOCK_RETRIES),
        })
    }
}

//! Configuration: the environment (read with envy), overridden by command-line options of the
//! same meaning, validated once into a [`Config`]. Every malformed value is an error naming its
//! variable; the DATABASE_URL's password never reaches `Debug`, errors or logs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::connect::DbUrl;
use crate::error::{Error, Result};
use crate::plan::Phase;
use crate::store::TableName;

/// The raw environment, every value a string so that we, not serde, word the errors.
#[derive(Deserialize, Default)]
struct Env {
    database_url: Option<String>,
    migrations_dir: Option<String>,
    environment: Option<String>,
    migrate_target_version: Option<String>,
    migrate_table: Option<String>,
    migrate_wait_timeout: Option<String>,
    migrate_lease_ttl: Option<String>,
    migrate_lease_timeout: Option<String>,
    migrate_holder: Option<String>,
    pod_name: Option<String>,
    hostname: Option<String>,
    migrate_statement_timeout: Option<String>,
    migrate_allow_newer_schema: Option<String>,
    migrate_allow_out_of_order: Option<String>,
    migrate_create_database: Option<String>,
    migrate_ignore_foreign_history: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    rust_log: Option<String>,
    migrate_termination_log: Option<String>,
    migrate_shutdown_grace: Option<String>,
    migrate_progress_interval: Option<String>,
    migrate_job_wait_timeout: Option<String>,
    migrate_lock_timeout: Option<String>,
    migrate_lock_retries: Option<String>,
    migrate_phase: Option<String>,
}

/// Values given on the command line; each overrides the environment variable of the same meaning.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--migrations-dir`.
    pub migrations_dir: Option<PathBuf>,
    /// `--environment`.
    pub environment: Option<String>,
    /// `--target`.
    pub target_version: Option<String>,
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
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (`LOG_FORMAT=json`).
    Json,
    /// Human-readable text (`LOG_FORMAT=text`).
    Text,
    /// `LOG_FORMAT` unset: text when stderr is a terminal (a human), JSON otherwise (pods,
    /// pipes, CI).
    Auto,
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
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (tracing-subscriber `EnvFilter` syntax); `None`: the default, `info` (the
    /// binary uses `warn` for commands whose product is their output).
    pub log_level: Option<String>,
    /// Where to write the termination message, if anywhere.
    pub termination_log: Option<PathBuf>,
    /// After SIGTERM, how long the in-flight migration may take to finish before it is
    /// abandoned (rolled back by the server when the connection closes).
    pub shutdown_grace: Duration,
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
        // Empty values count as unset, as in a pod spec that leaves a value blank.
        let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
        let env: Env = envy::from_iter(vars).map_err(|e| Error::Config {
            name: "environment".into(),
            message: e.to_string(),
        })?;

        let target_version = var(
            "MIGRATE_TARGET_VERSION (--target)",
            o.target_version.or(env.migrate_target_version),
            parse_version,
        )?;
        let table = var(
            "MIGRATE_TABLE",
            o.table.or(env.migrate_table),
            TableName::new,
        )?
        .unwrap_or_default();
        let wait_timeout = duration_var(
            "MIGRATE_WAIT_TIMEOUT",
            o.wait_timeout.or(env.migrate_wait_timeout),
            Duration::from_secs(300),
        )?;
        let lease_ttl = duration_var(
            "MIGRATE_LEASE_TTL",
            o.lease_ttl.or(env.migrate_lease_ttl),
            Duration::from_secs(30),
        )?;
        if lease_ttl < Duration::from_secs(1) {
            return Err(Error::Config {
                name: "MIGRATE_LEASE_TTL".into(),
                message: "must be at least 1s".into(),
            });
        }
        let (log_format, log_level) = log_settings(
            o.log_format.or(env.log_format),
            o.log_level.or(env.log_level).or(env.rust_log),
        )?;
        let holder = o
            .holder
            .or(env.migrate_holder)
            .or(env.pod_name)
            .unwrap_or_else(|| default_holder(env.hostname));
        let environment = environment_var(o.environment.or(env.environment))?;
        // Kubernetes creates the default path in every container; elsewhere we do not.
        let termination_log = env.migrate_termination_log.map(PathBuf::from).or_else(|| {
            let default = PathBuf::from("/dev/termination-log");
            default.exists().then_some(default)
        });
        Ok(Config {
            shutdown_grace: duration_var(
                "MIGRATE_SHUTDOWN_GRACE",
                env.migrate_shutdown_grace,
                Duration::from_secs(20),
            )?,
            database_url: o.database_url.or(env.database_url),
            migrations_dir: o
                .migrations_dir
                .or(env.migrations_dir.map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("./migrations")),
            environment,
            target_version,
            table,
            wait_timeout,
            lease_ttl,
            lease_timeout: duration_var(
                "MIGRATE_LEASE_TIMEOUT",
                o.lease_timeout.or(env.migrate_lease_timeout),
                Duration::from_secs(600),
            )?,
            holder,
            statement_timeout: optional_duration_var(
                "MIGRATE_STATEMENT_TIMEOUT",
                env.migrate_statement_timeout,
            )?,
            allow_newer_schema: flag_var(
                "MIGRATE_ALLOW_NEWER_SCHEMA",
                env.migrate_allow_newer_schema,
            )?,
            allow_out_of_order: flag_var(
                "MIGRATE_ALLOW_OUT_OF_ORDER",
                env.migrate_allow_out_of_order,
            )?,
            create_database: flag_var("MIGRATE_CREATE_DATABASE", env.migrate_create_database)?,
            ignore_foreign_history: flag_var(
                "MIGRATE_IGNORE_FOREIGN_HISTORY",
                env.migrate_ignore_foreign_history,
            )?,
            log_format,
            log_level,
            termination_log,
            progress_interval: Some(duration_var(
                "MIGRATE_PROGRESS_INTERVAL",
                env.migrate_progress_interval,
                Duration::from_secs(30),
            )?)
            .filter(|d| !d.is_zero()),
            job_wait_timeout: duration_var(
                "MIGRATE_JOB_WAIT_TIMEOUT",
                env.migrate_job_wait_timeout,
                Duration::from_secs(600),
            )?,
            lock_timeout: optional_duration_var("MIGRATE_LOCK_TIMEOUT", env.migrate_lock_timeout)?,
            lock_retries: var(
                "MIGRATE_LOCK_RETRIES",
                env.migrate_lock_retries,
                parse_retries,
            )?
            .unwrap_or(DEFAULT_LOCK_RETRIES),
            phase: var("MIGRATE_PHASE", env.migrate_phase, Phase::parse)?,
        })
    }

    /// The parsed DATABASE_URL; an error naming DATABASE_URL when it is missing or malformed.
    pub fn database_url(&self) -> Result<DbUrl> {
        match &self.database_url {
            None => Err(Error::Config {
                name: "DATABASE_URL".into(),
                message: "not set; give postgresql://user@host:26257/db?sslmode=verify-full (or --database-url)".into(),
            }),
            Some(url) => DbUrl::parse(url),
        }
    }

    /// A configuration with defaults for everything, for library callers and tests.
    pub fn new(database_url: Option<String>, migrations_dir: impl Into<PathBuf>) -> Config {
        let mut c = Config::from_vars(Vec::new(), Overrides::default())
            .unwrap_or_else(|_| unreachable!("defaults are valid"));
        c.database_url = database_url;
        c.migrations_dir = migrations_dir.into();
        c.termination_log = None;
        c
    }
}

/// `ENVIRONMENT`: a plain directory name.
fn environment_var(value: Option<String>) -> Result<Option<String>> {
    if let Some(e) = &value
        && (e.contains('/') || e.contains("..") || e.starts_with('.'))
    {
        return Err(Error::Config {
            name: "ENVIRONMENT".into(),
            message: format!("{e:?} must be a plain directory name"),
        });
    }
    Ok(value)
}

/// A duration variable, `default` when unset; a malformed value names the variable.
fn duration_var(name: &str, value: Option<String>, default: Duration) -> Result<Duration> {
    Ok(optional_duration_var(name, value)?.unwrap_or(default))
}

/// A duration variable without a default.
fn optional_duration_var(name: &str, value: Option<String>) -> Result<Option<Duration>> {
    var(name, value, parse_duration)
}

/// A variable parsed by `parse`; its error names the variable.
fn var<T>(
    name: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    value
        .map(|v| {
            parse(&v).map_err(|m| Error::Config {
                name: name.into(),
                message: m,
            })
        })
        .transpose()
}

/// A boolean variable, false when unset.
fn flag_var(name: &str, value: Option<String>) -> Result<bool> {
    match value {
        None => Ok(false),
        Some(v) => parse_bool(&v).ok_or_else(|| Error::Config {
            name: name.into(),
            message: format!("expected true or false, got {v:?}"),
        }),
    }
}

/// `LOG_FORMAT` and the log filter, validated.
fn log_settings(
    format: Option<String>,
    level: Option<String>,
) -> Result<(LogFormat, Option<String>)> {
    let format = match format.as_deref() {
        None => LogFormat::Auto,
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            return Err(Error::Config {
                name: "LOG_FORMAT".into(),
                message: format!("expected json or text, got {other:?}"),
            });
        }
    };
    if let Some(level) = &level {
        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| Error::Config {
            name: "LOG_LEVEL".into(),
            message: e.to_string(),
        })?;
    }
    Ok((format, level))
}

/// Parses a migration version: a positive integer that fits INT8.
pub fn parse_version(s: &str) -> std::result::Result<i64, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a version (a non-negative integer up to 9223372036854775807)"
        )),
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`; a bare integer means seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let err = || format!("{s:?} is not a duration (examples: 500ms, 30s, 5m, 1h)");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
        _ => return Err(err()),
    };
    // Server settings take int32 milliseconds, and deadlines must not overflow: a week is
    // more than any wait, lease or statement here needs.
    if d > MAX_DURATION {
        return Err(format!("{s:?} is longer than the maximum of 168h (7 days)"));
    }
    Ok(d)
}

/// `MIGRATE_LOCK_RETRIES` when unset.
pub const DEFAULT_LOCK_RETRIES: u32 = 5;

/// The most lock-timeout retries accepted: each retry waits up to a few seconds, so more than
/// this is a typo, not a plan.
pub const MAX_LOCK_RETRIES: u32 = 100;

/// A retry count: a non-negative integer up to [`MAX_LOCK_RETRIES`].
fn parse_retries(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n <= MAX_LOCK_RETRIES => Ok(n),
        _ => Err(format!(
            "{s:?} is not a retry count (an integer from 0 to {MAX_LOCK_RETRIES})"
        )),
    }
}

/// The longest duration any setting accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn default_holder(hostname: Option<String>) -> String {
    let host = hostname
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests;

//! Settings only the binary reads: how it logs, where the termination message goes, and how
//! long a migration in flight may finish after SIGTERM. The raw values (the command line's
//! `--log-format` / `--log-level`, the environment) are validated here, after the library's
//! [`crdb_migrate::Config`], which never holds them; every malformed value names its variable.

use std::path::PathBuf;
use std::time::Duration;

use crdb_migrate::{Error, parse_duration};
use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One JSON object per line (`LOG_FORMAT=json`).
    Json,
    /// Human-readable text (`LOG_FORMAT=text`).
    Text,
    /// `LOG_FORMAT` unset: text when stderr is a terminal (a human), JSON otherwise (pods,
    /// pipes, CI).
    Auto,
}

/// The command line's logging options, as given (each wins over its variable).
#[derive(Debug, Default)]
pub(crate) struct LogOptions {
    /// `--log-format`.
    pub(crate) format: Option<String>,
    /// `--log-level`.
    pub(crate) level: Option<String>,
}

/// The binary's variables, raw: every value a string so that we, not serde, word the errors.
#[derive(Deserialize, Default)]
struct RawEnv {
    log_format: Option<String>,
    log_level: Option<String>,
    rust_log: Option<String>,
    migrate_termination_log: Option<String>,
    migrate_shutdown_grace: Option<String>,
}

/// The binary's validated settings.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Log format.
    pub(crate) log_format: LogFormat,
    /// Log filter: a level, or comma-separated `target=level` directives (tracing-subscriber's
    /// `Targets`); `None`: the command's default (`info`, or `warn` for commands whose product
    /// is their output).
    pub(crate) log_level: Option<String>,
    /// Where to write the termination message, if anywhere.
    pub(crate) termination_log: Option<PathBuf>,
    /// After SIGTERM, how long the in-flight migration may take to finish before it is
    /// abandoned (rolled back by the server when the connection closes).
    pub(crate) shutdown_grace: Duration,
}

impl Settings {
    /// Reads the process environment, with the command line's options over it.
    pub(crate) fn from_env(options: LogOptions) -> Result<Settings, Error> {
        Settings::from_vars(std::env::vars(), options)
    }

    /// Reads `vars` (empty values count as unset), with `options` over them (`--log-level`
    /// over `LOG_LEVEL` over `RUST_LOG`). Checked in this order: `LOG_FORMAT`, `LOG_LEVEL`,
    /// `MIGRATE_SHUTDOWN_GRACE`.
    fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        options: LogOptions,
    ) -> Result<Settings, Error> {
        let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
        let env: RawEnv = envy::from_iter(vars).map_err(|e| Error::Config {
            name: "environment".into(),
            message: e.to_string(),
        })?;
        let log_format = log_format(options.format.or(env.log_format))?;
        let log_level = log_level(options.level.or(env.log_level).or(env.rust_log))?;
        let termination_log = termination_log(env.migrate_termination_log);
        let shutdown_grace = match env.migrate_shutdown_grace {
            None => Duration::from_secs(20),
            Some(v) => parse_duration(&v).map_err(|message| Error::Config {
                name: "MIGRATE_SHUTDOWN_GRACE".into(),
                message,
            })?,
        };
        Ok(Settings {
            log_format,
            log_level,
            termination_log,
            shutdown_grace,
        })
    }
}

/// `LOG_FORMAT`: `json` or `text`; unset is [`LogFormat::Auto`].
fn log_format(value: Option<String>) -> Result<LogFormat, Error> {
    match value.as_deref() {
        None => Ok(LogFormat::Auto),
        Some("json") => Ok(LogFormat::Json),
        Some("text") => Ok(LogFormat::Text),
        Some(other) => Err(Error::Config {
            name: "LOG_FORMAT".into(),
            message: format!("expected json or text, got {other:?}"),
        }),
    }
}

/// The log filter, checked as tracing-subscriber will read it.
fn log_level(value: Option<String>) -> Result<Option<String>, Error> {
    if let Some(level) = &value {
        level
            .parse::<tracing_subscriber::filter::Targets>()
            .map_err(|e| Error::Config {
                name: "LOG_LEVEL".into(),
                message: format!(
                    "{e}: expected a level or comma-separated `target=level` directives, e.g. \
                     `info,tokio_postgres=warn`"
                ),
            })?;
    }
    Ok(value)
}

/// `MIGRATE_TERMINATION_LOG`, else Kubernetes' default path when it exists: Kubernetes
/// creates it in every container; elsewhere we do not.
pub(crate) fn termination_log(value: Option<String>) -> Option<PathBuf> {
    value.map(PathBuf::from).or_else(|| {
        let default = PathBuf::from("/dev/termination-log");
        default.exists().then_some(default)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn log_level_takes_levels_and_target_directives_and_names_itself_when_bad() {
        for good in [
            "debug",
            "WARN",
            "info,tokio_postgres=warn",
            "crdb_migrate=trace",
            "off",
        ] {
            let s = Settings::from_vars(vars(&[("LOG_LEVEL", good)]), LogOptions::default());
            assert_eq!(s.expect(good).log_level.as_deref(), Some(good));
        }
        for bad in ["crdb_migrate=loud", "info,=warn=x"] {
            let e = Settings::from_vars(vars(&[("LOG_LEVEL", bad)]), LogOptions::default())
                .expect_err(bad)
                .to_string();
            assert!(
                e.contains("LOG_LEVEL") && e.contains("target=level"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn options_win_over_log_level_over_rust_log() {
        let env = vars(&[("LOG_LEVEL", "debug"), ("RUST_LOG", "trace")]);
        let s = Settings::from_vars(env.clone(), LogOptions::default()).expect("valid");
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        let given = LogOptions {
            format: Some("text".into()),
            level: Some("warn".into()),
        };
        let s = Settings::from_vars(env, given).expect("valid");
        assert_eq!(
            (s.log_format, s.log_level.as_deref()),
            (LogFormat::Text, Some("warn"))
        );
        let s = Settings::from_vars(vars(&[("RUST_LOG", "trace")]), LogOptions::default());
        assert_eq!(s.expect("valid").log_level.as_deref(), Some("trace"));
    }

    #[test]
    fn shutdown_grace_and_format_name_their_variable() {
        let s = Settings::from_vars(vars(&[]), LogOptions::default()).expect("defaults");
        assert_eq!(s.shutdown_grace, Duration::from_secs(20));
        assert_eq!(s.log_format, LogFormat::Auto);
        for (name, bad) in [("MIGRATE_SHUTDOWN_GRACE", "soon"), ("LOG_FORMAT", "xml")] {
            let e = Settings::from_vars(vars(&[(name, bad)]), LogOptions::default())
                .expect_err(bad)
                .to_string();
            assert!(e.starts_with(name), "{e}");
        }
    }
}

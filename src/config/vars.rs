//! One variable at a time: a raw value parsed, checked or defaulted, every error naming the
//! variable at fault.

use std::path::PathBuf;
use std::time::Duration;

use super::LogFormat;
use super::parse::{parse_bool, parse_duration};
use crate::error::{Error, Result};

/// `ENVIRONMENT`: a plain directory name.
pub(super) fn environment_var(value: Option<String>) -> Result<Option<String>> {
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
pub(super) fn duration_var(
    name: &str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration> {
    Ok(optional_duration_var(name, value)?.unwrap_or(default))
}

/// A duration variable without a default.
pub(super) fn optional_duration_var(name: &str, value: Option<String>) -> Result<Option<Duration>> {
    var(name, value, parse_duration)
}

/// A variable parsed by `parse`; its error names the variable.
pub(super) fn var<T>(
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
pub(super) fn flag_var(name: &str, value: Option<String>) -> Result<bool> {
    match value {
        None => Ok(false),
        Some(v) => parse_bool(&v).ok_or_else(|| Error::Config {
            name: name.into(),
            message: format!("expected true or false, got {v:?}"),
        }),
    }
}

/// `LOG_FORMAT` and the log filter, validated.
pub(super) fn log_settings(
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
    Ok((format, level))
}

/// `MIGRATE_TERMINATION_LOG`, else Kubernetes' default path when it exists: Kubernetes
/// creates it in every container; elsewhere we do not.
pub(super) fn termination_log(value: Option<String>) -> Option<PathBuf> {
    value.map(PathBuf::from).or_else(|| {
        let default = PathBuf::from("/dev/termination-log");
        default.exists().then_some(default)
    })
}

/// The lease holder when neither `MIGRATE_HOLDER` nor `POD_NAME` names one: host and pid.
pub(super) fn default_holder(hostname: Option<String>) -> String {
    let host = hostname
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

//! One variable at a time: a raw value parsed, checked or defaulted, every error naming the
//! variable at fault.

use std::time::Duration;

use super::parse::parse_bool;
use crate::duration::parse_duration;
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

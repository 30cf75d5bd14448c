//! The value parsers behind the variables: versions, retry counts and booleans (durations are
//! [`crate::duration`]'s), each returning a message the caller puts beside the variable's name.

/// Parses a migration version: a positive integer that fits INT8.
pub fn parse_version(s: &str) -> std::result::Result<i64, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a version (a non-negative integer up to 9223372036854775807)"
        )),
    }
}

/// `MIGRATE_LOCK_RETRIES` when unset.
pub const DEFAULT_LOCK_RETRIES: u32 = 5;

/// The most lock-timeout retries accepted: each retry waits up to a few seconds, so more than
/// this is a typo, not a plan.
pub const MAX_LOCK_RETRIES: u32 = 100;

/// A retry count: a non-negative integer up to [`MAX_LOCK_RETRIES`].
pub(super) fn parse_retries(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n <= MAX_LOCK_RETRIES => Ok(n),
        _ => Err(format!(
            "{s:?} is not a retry count (an integer from 0 to {MAX_LOCK_RETRIES})"
        )),
    }
}

pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `MIGRATE_ON_DRIFT`: what `migrate` does when the live schema differs from the one stored
/// after the last run that did work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDrift {
    /// Log `schema.drift` and go on (the default).
    #[default]
    Warn,
    /// Refuse before anything runs (exit 32).
    Refuse,
}

/// Parses `warn` or `refuse`.
pub(super) fn parse_on_drift(s: &str) -> std::result::Result<OnDrift, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "warn" => Ok(OnDrift::Warn),
        "refuse" => Ok(OnDrift::Refuse),
        _ => Err(format!("expected warn or refuse, got {s:?}")),
    }
}

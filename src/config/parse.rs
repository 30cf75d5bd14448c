//! The value parsers behind the variables: versions, durations, retry counts and booleans, each
//! returning a message the caller puts beside the variable's name.

use std::time::Duration;

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
pub(super) fn parse_retries(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n <= MAX_LOCK_RETRIES => Ok(n),
        _ => Err(format!(
            "{s:?} is not a retry count (an integer from 0 to {MAX_LOCK_RETRIES})"
        )),
    }
}

/// The longest duration any setting accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

pub(super) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

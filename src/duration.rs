//! Durations as every setting and directive writes them (`500ms`, `30s`, `5m`, `1h`, or bare
//! seconds), capped at a week: a leaf both the configuration and the file loader read.

use std::time::Duration;

/// The longest duration any setting or directive accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
        for bad in [
            "abc",
            "",
            "5x",
            "-1s",
            "1.5s",
            "s",
            "169h",
            "18446744073709551615",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

//! Every backoff policy, in one place: how long to wait between attempts at connecting, at
//! taking the lease, at replaying a 40001, at a setup race lost to a peer, and between polls of
//! `wait`, between attempts at a migration that hit its lock timeout. All are jittered (backon), so runners started together do not move in lockstep.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

fn jittered(min: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(min)
        .with_max_delay(max)
}

/// Waiting for the database: from about 500 ms, doubled each time, capped at 10 s, unbounded
/// (`MIGRATE_WAIT_TIMEOUT` ends it).
pub fn connect() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(500), Duration::from_secs(10))
        .with_factor(2.0)
        .without_max_times()
        .build()
}

/// Polling for the lease: from 100 ms, capped at 2 s, unbounded (`MIGRATE_LEASE_TIMEOUT` ends it).
pub fn lease() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(100), Duration::from_secs(2))
        .without_max_times()
        .build()
}

/// How many times a 40001 is replayed (so a migration gets 10 attempts).
pub const REPLAY_RETRIES: usize = 9;

/// Replaying a migration's transaction or a statement after 40001: from 50 ms, capped at 2 s,
/// [`REPLAY_RETRIES`] times.
pub fn replay() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(50), Duration::from_secs(2))
        .with_max_times(REPLAY_RETRIES)
        .build()
}

/// Retrying a transactional migration after a lock timeout (55P03), `retries` times
/// (`MIGRATE_LOCK_RETRIES`): from 250 ms, doubled, capped at 5 s, so the holder of the lock has
/// time to finish while the application behind the migration is never blocked for long.
pub fn lock_retry(retries: u32) -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(250), Duration::from_secs(5))
        .with_factor(2.0)
        .with_max_times(retries as usize)
        .build()
}

/// A setup statement lost a race to a concurrent runner: re-check soon, 10 times at most.
pub fn setup_race() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(20), Duration::from_millis(500))
        .with_max_times(10)
        .build()
}

/// `wait --version` polling the ledger: from 200 ms, capped at 2 s, unbounded.
pub fn wait_poll() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(200), Duration::from_secs(2))
        .without_max_times()
        .build()
}

/// Polling CockroachDB schema-change jobs we wait for at start: from 500 ms, capped at 10 s,
/// unbounded (`MIGRATE_JOB_WAIT_TIMEOUT` ends it).
pub fn job_poll() -> impl Iterator<Item = Duration> {
    jittered(Duration::from_millis(500), Duration::from_secs(10))
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lease_delays_are_jittered_and_bounded() {
        let delays: Vec<Duration> = lease().take(50).collect();
        assert_eq!(delays.len(), 50, "unbounded: the timeout ends the polling");
        // backon's jitter adds up to one more delay: [100 ms, 4 s].
        for d in &delays {
            assert!(*d >= Duration::from_millis(100) && *d <= 4 * S, "{d:?}");
        }
        // Two runners started together do not poll in lockstep.
        let other: Vec<Duration> = lease().take(50).collect();
        assert_ne!(delays, other);
    }

    #[test]
    fn connect_starts_near_half_a_second_and_caps_near_ten() {
        let d: Vec<Duration> = connect().take(12).collect();
        assert!(
            d[0] >= Duration::from_millis(500) && d[0] < Duration::from_millis(1001),
            "{d:?}"
        );
        assert!(d.iter().all(|x| *x <= 20 * S), "{d:?}");
        assert!(d.iter().skip(6).all(|x| *x >= 10 * S), "{d:?}");
    }

    #[test]
    fn lock_retries_are_bounded_by_the_setting() {
        assert_eq!(lock_retry(5).count(), 5);
        assert_eq!(lock_retry(0).count(), 0);
        let d: Vec<Duration> = lock_retry(8).collect();
        assert!(d[0] >= Duration::from_millis(250), "{d:?}");
        // Capped at 5 s, plus at most one more delay of jitter.
        assert!(d.iter().all(|x| *x <= 10 * S), "{d:?}");
    }

    #[test]
    fn replay_and_setup_are_bounded() {
        assert_eq!(replay().count(), REPLAY_RETRIES);
        assert_eq!(setup_race().count(), 10);
        assert_eq!(wait_poll().take(100).count(), 100);
    }
}

//! Unit tests of polling, the heartbeat's verdicts and cancellation.

use super::heartbeat::{Beat, heartbeat_period};
use super::*;

const S: Duration = Duration::from_secs(1);

#[test]
fn polls_until_the_timeout_and_never_sleeps_past_it() {
    let ms = Duration::from_millis;
    assert_eq!(next_poll(Some(ms(300)), ms(0), 10 * S), Some(ms(300)));
    // The last sleep is cut to what is left, so the final attempt lands on the timeout.
    assert_eq!(next_poll(Some(2 * S), ms(9500), 10 * S), Some(ms(500)));
    assert_eq!(next_poll(Some(ms(300)), 10 * S, 10 * S), None);
    assert_eq!(next_poll(Some(ms(300)), 11 * S, 10 * S), None);
    // A zero timeout (MIGRATE_LEASE_TIMEOUT=0s) tries once and gives up.
    assert_eq!(next_poll(Some(ms(300)), ms(0), ms(0)), None);
    // An exhausted backoff (it is unbounded, but be safe) falls back to one second.
    assert_eq!(next_poll(None, ms(0), 10 * S), Some(S));
}

#[test]
fn heartbeat_renews_three_times_per_ttl() {
    assert_eq!(heartbeat_period(30 * S), 10 * S);
    // The shortest TTL config allows (1 s) still renews well before expiry.
    assert_eq!(heartbeat_period(S), Duration::from_nanos(333_333_333));
    assert!(heartbeat_period(S) * 2 < S);
}

#[test]
fn a_renewal_matching_no_row_is_a_loss_an_error_is_not() {
    assert_eq!(Beat::of::<()>(&Ok(1)), Beat::Renewed);
    assert_eq!(Beat::of::<()>(&Ok(0)), Beat::Lost);
    assert_eq!(Beat::of(&Err("connection reset")), Beat::Failed);
}

#[tokio::test]
async fn a_cancelled_sleep_wakes_at_once() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let t = Instant::now();
    let r = sleep_or_cancel(Duration::from_secs(60), &cancel).await;
    assert!(matches!(r, Err(Error::Terminated)));
    assert!(t.elapsed() < Duration::from_secs(5));
}

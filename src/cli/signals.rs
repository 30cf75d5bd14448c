//! SIGTERM and SIGINT: start nothing new, give the migration in flight the grace budget to
//! finish, then abandon it (its statement is cancelled and rolls back, the lease is released)
//! and let the work return what it did. A second signal stops at once.

use std::time::Duration;

use crdb_migrate::{Error, Outcome, Stop, events};

/// Runs `work`, stopped through `stop` as above (`grace`: `MIGRATE_SHUTDOWN_GRACE`). The work
/// must honour [`Stop::abandon`] (a [`crdb_migrate::Run`] does; wrap anything else in
/// [`Stop::or_abandoned`]).
pub(crate) async fn with_signals<F>(stop: &Stop, grace: Duration, work: F) -> Outcome
where
    F: std::future::Future<Output = Outcome>,
{
    let working = || stop.is_working();
    with_signals_on(stop, working, grace, work)
        .await
        .unwrap_or_else(Outcome::failed)
}

/// [`with_signals`] for any work: `working` says whether a migration step is in flight (a
/// fleet's runs each have their own [`Stop`]); `Err` when the handlers cannot be installed.
pub(crate) async fn with_signals_on<F, T>(
    stop: &Stop,
    working: impl Fn() -> bool,
    grace: Duration,
    work: F,
) -> Result<T, Error>
where
    F: std::future::Future<Output = T>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => return Err(Error::Signals),
    };
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => return Ok(r),
        _ = term.recv() => {}
        _ = int.recv() => {}
    };
    // A migration step in flight gets the grace budget; anything else (waiting for the
    // database, the lease or a version) stops at once.
    let working = working();
    let grace = if working {
        grace
    } else {
        Duration::from_millis(500).min(grace)
    };
    tracing::warn!(
        event = events::RUN_SIGNAL,
        grace_ms = grace.as_millis() as u64,
        working,
        "signal received: starting nothing new{}",
        if working {
            ", letting the current migration finish"
        } else {
            ""
        }
    );
    stop.cancel();
    tokio::select! {
        // Everything asked for was done within the grace: the database is at the target.
        r = &mut work => return Ok(r),
        _ = tokio::time::sleep(grace) => {}
        // A second signal: the operator wants out now.
        _ = term.recv() => {}
        _ = int.recv() => {}
    };
    tracing::warn!(
        event = events::RUN_SIGNAL,
        working,
        "stopping now{}",
        if working {
            ": the current migration is cancelled and rolls back"
        } else {
            ""
        }
    );
    stop.abandon();
    Ok(work.await)
}

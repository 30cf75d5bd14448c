//! SIGTERM and SIGINT: start nothing new, give the migration in flight the grace budget to
//! finish, then abandon it (its statement is cancelled and rolls back) and release the lease.
//! A second signal stops at once.

use std::time::Duration;

use crdb_migrate::{Error, Migrator, events};

/// Runs `work`, handling SIGTERM/SIGINT as above.
pub(crate) async fn with_signals<F>(
    migrator: &Migrator,
    shutdown_grace: Duration,
    work: F,
) -> Result<(), Error>
where
    F: std::future::Future<Output = Result<(), Error>>,
{
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            return Err(Error::Signals);
        }
    };
    let mut work = Box::pin(work);
    tokio::select! {
        r = &mut work => return r,
        _ = term.recv() => {}
        _ = int.recv() => {}
    };
    // A migration step in flight gets the grace budget; anything else (waiting for the
    // database, the lease or a version) stops at once.
    let working = migrator.is_working();
    let grace = if working {
        shutdown_grace
    } else {
        Duration::from_millis(500).min(shutdown_grace)
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
    migrator.cancel_token().cancel();
    let finished = tokio::select! {
        r = &mut work => Some(r),
        _ = tokio::time::sleep(grace) => None,
        // A second signal: the operator wants out now.
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    match finished {
        // Everything asked for was done within the grace: the database is at the target.
        Some(r) => r,
        None => {
            drop(work);
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
            migrator.release_abandoned().await;
            Err(Error::Terminated)
        }
    }
}

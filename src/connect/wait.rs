//! Waiting for the database: attempts retried with the backoff of `backoff::connect` until
//! `MIGRATE_WAIT_TIMEOUT`, logging `db.wait`; permanent failures stop at once.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::attempt::{Failure, attempt};
use super::{DbUrl, ServerInfo};
use crate::backoff;
use crate::error::Error;
use crate::log::events;

/// Waits until the server accepts us and answers `SELECT version()`, retrying transient
/// failures with backoff for up to `wait_timeout`. With `create_database`, a missing database
/// is created first (`CREATE DATABASE IF NOT EXISTS` through the server's default database).
///
/// Each attempt tries every host in the URL in turn, and is bounded by `connect_timeout`
/// (and by what remains of `wait_timeout`, though never less than one second).
pub async fn wait_and_connect(
    url: &DbUrl,
    wait_timeout: Duration,
    create_database: bool,
) -> Result<(Client, ServerInfo), Error> {
    wait_and_connect_as(true, url, wait_timeout, create_database).await
}

/// A side connection (the lease's, or a reconnect's helper): as [`wait_and_connect`] but ready
/// once authenticated, without asking `SELECT version()`.
pub(crate) async fn wait_and_connect_side(
    url: &DbUrl,
    wait_timeout: Duration,
) -> Result<Client, Error> {
    Ok(wait_and_connect_as(false, url, wait_timeout, false)
        .await?
        .0)
}

async fn wait_and_connect_as(
    probe: bool,
    url: &DbUrl,
    wait_timeout: Duration,
    create_database: bool,
) -> Result<(Client, ServerInfo), Error> {
    let start = Instant::now();
    let deadline = start + wait_timeout;
    let mut delays = backoff::connect();
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let floor = remaining.max(Duration::from_secs(1));
        let budget = Some(url.connect_timeout().map_or(floor, |t| t.min(floor)));
        match attempt(probe, url, budget, create_database).await {
            Ok((client, info)) => {
                if probe {
                    tracing::info!(
                        event = events::DB_READY,
                        flavour = ?info.flavour,
                        version = %info.version,
                        attempts,
                        "database ready"
                    );
                }
                return Ok((client, info));
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(reason)) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::Unreachable {
                        attempts,
                        waited: now - start,
                        last: reason,
                    });
                }
                let delay = delays
                    .next()
                    .unwrap_or(Duration::from_secs(10))
                    .min(deadline - now);
                tracing::warn!(
                    event = events::DB_WAIT,
                    attempt = attempts,
                    delay_ms = delay.as_millis() as u64,
                    reason = %reason,
                    "waiting for the database"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

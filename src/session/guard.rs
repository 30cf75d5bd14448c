//! Releasing: a [`Releaser`] frees the lease on its own connection or a fallback, and the
//! [`Guard`] keeps what the SIGTERM path needs to clean up after work it abandoned.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::{Lease, LeaseConn};
use crate::log::events;
use crate::store::fence::Fence;
use crate::store::{Tables, lease};

/// Frees a lease (see [`Lease::releaser`]).
pub struct Releaser {
    pub(super) conn: Arc<LeaseConn>,
    pub(super) tables: Tables,
    pub(super) fence: Fence,
    pub(super) heartbeat: tokio::task::AbortHandle,
}

impl Releaser {
    /// Frees the lease if it is still ours, on the lease's connection, or on `fallback` (the
    /// migration connection) when that one is gone, so a finished run never leaves its lease
    /// to expire. Bounded in time: a release that cannot complete leaves the lease to expire by
    /// itself (logged, not an error: the work is over).
    pub async fn release(self, fallback: Option<&Client>) {
        self.heartbeat.abort();
        let (holder, fence) = (&self.fence.holder, self.fence.token);
        let own = self.conn.get();
        let mut result = self.release_on(&own).await;
        if let (Err(_), Some(other)) = (&result, fallback) {
            result = self.release_on(other).await;
        }
        match result {
            Ok(()) => {
                tracing::info!(event = events::LEASE_RELEASED, holder = %holder, fence, "lease released");
            }
            Err(e) => {
                tracing::warn!(event = events::LEASE_RELEASE_FAILED, holder = %holder, fence, error = %e, "lease release failed; it will expire by itself");
            }
        }
    }

    async fn release_on(&self, client: &Client) -> std::result::Result<(), String> {
        let q = lease::release(client, &self.tables, &self.fence);
        match tokio::time::timeout(Duration::from_secs(5), q).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// What the SIGTERM path needs to clean up after work it abandoned: the lease being held and
/// the migration connection's cancel token while a step runs.
#[derive(Default)]
pub struct Guard {
    held: std::sync::Mutex<Option<Releaser>>,
    in_flight: std::sync::Mutex<Option<tokio_postgres::CancelToken>>,
}

impl Guard {
    /// Records the lease being held (for [`Guard::abandon`]).
    pub fn hold(&self, lease: &Lease) {
        if let Ok(mut slot) = self.held.lock() {
            *slot = Some(lease.releaser());
        }
    }

    /// Records (or clears) the connection working under the lease.
    pub fn working(&self, token: Option<tokio_postgres::CancelToken>) {
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = token;
        }
    }

    /// A migration connection is working under the lease (the SIGTERM grace applies).
    pub fn is_working(&self) -> bool {
        self.in_flight.lock().map(|t| t.is_some()).unwrap_or(false)
    }

    /// Releases the held lease at the end of the work (normal path); `fallback` is a live
    /// connection to release on when the lease's own is gone.
    pub async fn release(&self, fallback: Option<&Client>) {
        self.working(None);
        let releaser = self.held.lock().ok().and_then(|mut h| h.take());
        if let Some(r) = releaser {
            r.release(fallback).await;
        }
    }

    /// After the work's future was dropped (SIGTERM past the grace budget): cancels the
    /// statement the migration connection was running, then releases the lease.
    ///
    /// Dropping the client does not stop the statement: the server would run it to its end
    /// (PostgreSQL notices a vanished client only when it next writes to it), holding the
    /// migration's locks, and the lease row's if the fenced ledger write had run, which would
    /// block our release and the next holder. The cancelled transaction rolls back.
    pub async fn abandon(&self, url: Option<&crate::connect::DbUrl>) {
        let token = self.in_flight.lock().ok().and_then(|mut t| t.take());
        if let Some(token) = token {
            let cancelled = match url {
                Some(url) => tokio::time::timeout(
                    Duration::from_secs(5),
                    crate::connect::cancel(url, &token),
                )
                .await
                .map_err(|_| "no answer within 5s".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
                None => Err("no database URL".to_string()),
            };
            match cancelled {
                Ok(()) => tracing::warn!(
                    event = events::RUN_SIGNAL,
                    "cancelled the abandoned migration's statement; its transaction rolls back"
                ),
                Err(e) => tracing::warn!(
                    event = events::RUN_SIGNAL,
                    error = %e,
                    "could not cancel the abandoned migration's statement; the server ends it when it notices we are gone"
                ),
            }
        }
        self.release(None).await;
    }
}

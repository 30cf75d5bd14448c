//! The heartbeat: renews the lease every TTL/3 on the lease's own connection, reconnecting
//! that connection when it drops, and flags the lease lost when a renewal matches no row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::LeaseConn;
use crate::log::events;
use crate::store::fence::Fence;
use crate::store::{Tables, lease};

/// How often the heartbeat renews: three times per TTL, so one slow or failed renewal still
/// leaves time for another before the lease expires.
pub(super) fn heartbeat_period(ttl: Duration) -> Duration {
    ttl / 3
}

/// What one heartbeat renewal found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Beat {
    /// Our row was extended.
    Renewed,
    /// No row matched our holder, fence and an unexpired lease: it expired or was taken.
    Lost,
    /// The statement failed (network, server): not yet a loss; the fenced write decides.
    Failed,
}

impl Beat {
    pub(super) fn of<E>(renewal: &std::result::Result<u64, E>) -> Beat {
        match renewal {
            Ok(1) => Beat::Renewed,
            Ok(_) => Beat::Lost,
            Err(_) => Beat::Failed,
        }
    }
}

pub(super) async fn heartbeat(
    conn: Arc<LeaseConn>,
    t: Tables,
    fence: Fence,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let period = heartbeat_period(ttl);
    loop {
        tokio::time::sleep(period).await;
        let mut client = conn.get();
        let mut renewed = lease::renew(&client, &t, &fence).await;
        if let Err(e) = &renewed
            && crate::sqlstate::is_connection_lost(e)
        {
            // The lease's connection dropped (a node restart, a load balancer): reconnect
            // within what is left of the lease, and renew at once.
            let down = Instant::now();
            match conn.reconnect(ttl.saturating_sub(period)).await {
                Ok(fresh) => {
                    tracing::warn!(
                        event = events::DB_RECONNECTED,
                        connection = "lease",
                        downtime_ms = down.elapsed().as_millis() as u64,
                        "lease connection re-established"
                    );
                    client = fresh;
                    renewed = lease::renew(&client, &t, &fence).await;
                }
                Err(e) => {
                    tracing::warn!(event = events::LEASE_RENEW_FAILED, holder = %fence.holder, fence = fence.token, error = %e, "lease connection lost and not re-established yet; retrying");
                }
            }
        }
        match Beat::of(&renewed) {
            Beat::Renewed => {
                tracing::info!(event = events::LEASE_RENEWED, holder = %fence.holder, fence = fence.token, "lease renewed");
            }
            Beat::Lost => {
                lost.store(true, Ordering::SeqCst);
                tracing::error!(event = events::LEASE_LOST, holder = %fence.holder, fence = fence.token, "lease lost: it expired or another runner took it");
                return;
            }
            Beat::Failed => {
                // A failed renewal is not yet a loss: the fenced commit decides. Keep trying.
                let error = renewed.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(event = events::LEASE_RENEW_FAILED, holder = %fence.holder, fence = fence.token, error = %error, "lease renewal failed; retrying");
            }
        }
    }
}

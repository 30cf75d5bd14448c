//! A stalled migration connection: a step's replies stopped coming while the server is idle,
//! waiting on us (a load balancer that silently dropped the connection, a stall). Long
//! statements are not stalls: the server is then busy, not idle. Watched on the lease's
//! connection (PostgreSQL's `pg_stat_activity` for our backend); a stall is reported as a lost
//! connection, so the run reconnects, ends the old session and decides from the ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// How the busy connection is watched.
pub struct StallCheck {
    /// The side connection (the lease's).
    pub client: Arc<Client>,
    /// The busy connection's backend.
    pub pid: i32,
    /// How long the server may wait on us before the connection counts as lost.
    pub limit: Duration,
}

/// The state of our backend and how long it has been in it.
pub const STATE_SQL: &str = "SELECT state, EXTRACT(EPOCH FROM clock_timestamp() - state_change)::FLOAT8 FROM pg_stat_activity WHERE pid = $1::INT4";

/// Whether a backend in `state` for `idle_secs` means our connection is stalled: the server
/// waits on us (idle, or idle in a transaction) for longer than `limit`, or the backend is gone.
pub fn is_stalled(state: Option<(&str, f64)>, limit: Duration) -> bool {
    match state {
        None => true,
        Some((state, secs)) => state.starts_with("idle") && secs > limit.as_secs_f64(),
    }
}

impl StallCheck {
    /// Runs `work`; checks every `limit / 3` whether the server is waiting on us, and ends
    /// `work` with a lost connection when it has been for longer than `limit`.
    pub async fn guard<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::pin!(work);
        let period = (self.limit / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = tick.tick() => {
                    if self.stalled().await {
                        return Err(Error::ConnectionLost {
                            context: "the migration connection".into(),
                            message: format!(
                                "the server has waited on us for over {}s while a step's replies were outstanding: the connection is stalled",
                                self.limit.as_secs()
                            ),
                            source: None,
                        });
                    }
                }
            }
        }
    }

    async fn stalled(&self) -> bool {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&self.pid];
        let q = self.client.query_opt(STATE_SQL, &params);
        match tokio::time::timeout(Duration::from_secs(5), q).await {
            Ok(Ok(row)) => {
                let state = row.as_ref().and_then(|r| {
                    let s: Option<String> = r.try_get(0).ok().flatten();
                    let secs: Option<f64> = r.try_get(1).ok().flatten();
                    s.map(|s| (s, secs.unwrap_or(0.0)))
                });
                is_stalled(state.as_ref().map(|(s, t)| (s.as_str(), *t)), self.limit)
            }
            // The side connection cannot tell: not a verdict on the busy one.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_server_waiting_on_us_past_the_limit_is_a_stall() {
        let limit = Duration::from_secs(30);
        assert!(is_stalled(Some(("idle in transaction", 31.0)), limit));
        assert!(is_stalled(Some(("idle", 45.0)), limit));
        assert!(is_stalled(None, limit), "the backend is gone");
        assert!(!is_stalled(Some(("idle in transaction", 2.0)), limit));
        // An hour-long index build is busy, not stalled.
        assert!(!is_stalled(Some(("active", 3600.0)), limit));
    }
}

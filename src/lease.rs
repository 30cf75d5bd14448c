//! The lease in `_migrations_lease` (SPEC §3): one row with holder, a fence token that grows at
//! every acquisition and an expiry in database time. Acquired by a conditional UPDATE, renewed
//! by a heartbeat on its own connection every TTL/3, checked inside every migration's
//! transaction (see `ledger::record_sql`), released at the end of every run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use time::OffsetDateTime;
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::ledger::Tables;
use crate::log::events;

/// The lease row as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaseInfo {
    /// Who holds (or last held) it; `None` when free.
    pub holder: Option<String>,
    /// The fence token of the last acquisition.
    pub fence: i64,
    /// When it expires (database time), RFC 3339.
    pub expires_at: Option<String>,
    /// Held and not expired.
    pub held: bool,
}

/// The fencing identity every fenced statement carries.
#[derive(Debug, Clone)]
pub struct Fence {
    /// Our holder name.
    pub holder: String,
    /// Our fence token.
    pub token: i64,
    /// The TTL in milliseconds (each fenced write extends the lease by this).
    pub ttl_ms: i64,
}

/// A lease we hold. Dropping it stops the heartbeat; call [`Lease::release`] to free it.
pub struct Lease {
    client: Arc<Client>,
    tables: Tables,
    /// Our identity for fenced statements.
    pub fence: Fence,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// What acquiring may wait on: a stop request (SIGTERM).
pub type StopFlag = Arc<AtomicBool>;

fn rfc3339_micros(micros: Option<i64>) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros?) * 1000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Reads the lease row (none when the table does not exist yet).
pub async fn show(client: &Client, t: &Tables) -> Result<Option<LeaseInfo>> {
    let sql = format!(
        "SELECT holder, fence, (extract(epoch from expires_at) * 1000000)::INT8, (holder IS NOT NULL AND expires_at > clock_timestamp()) FROM {} WHERE id = 1",
        t.lease
    );
    match client.query_opt(&sql, &[]).await {
        Ok(Some(row)) => Ok(Some(LeaseInfo {
            holder: row.try_get(0).ok().flatten(),
            fence: row.try_get(1).unwrap_or(0),
            expires_at: rfc3339_micros(row.try_get(2).ok().flatten()),
            held: row.try_get(3).unwrap_or(false),
        })),
        Ok(None) => Ok(None),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(Error::db("reading the lease", &e)),
    }
}

/// Frees the lease whoever holds it (`unlock --force`), returning what it was.
pub async fn force_release(client: &Client, t: &Tables) -> Result<Option<LeaseInfo>> {
    let before = show(client, t).await?;
    let sql = format!(
        "UPDATE {} SET holder = NULL, expires_at = NULL WHERE id = 1",
        t.lease
    );
    client
        .execute(&sql, &[])
        .await
        .map_err(|e| Error::db("releasing the lease", &e))?;
    Ok(before)
}

/// Takes the lease, polling with jittered backoff until `timeout` (exit 11) or a stop request.
/// `client` becomes the lease's own connection (heartbeat and release).
pub async fn acquire(
    client: Client,
    t: &Tables,
    holder: &str,
    ttl: Duration,
    timeout: Duration,
    stop: &StopFlag,
) -> Result<Lease> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let sql = format!(
        "UPDATE {} SET holder = $1::TEXT, fence = fence + 1, acquired_at = clock_timestamp(),
            expires_at = clock_timestamp() + INTERVAL '1 millisecond' * $2::INT8
         WHERE id = 1 AND (holder IS NULL OR expires_at IS NULL OR expires_at <= clock_timestamp() OR holder = $1::TEXT)
         RETURNING fence",
        t.lease
    );
    let started = Instant::now();
    let mut backoff = acquire_backoff();
    loop {
        let row = match client.query_opt(&sql, &[&holder, &ttl_ms]).await {
            Ok(row) => row,
            // CockroachDB: contention with another acquirer; not acquired this time, poll on.
            Err(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE) =>
            {
                None
            }
            Err(e) => return Err(Error::db("acquiring the lease", &e)),
        };
        if let Some(row) = row {
            let token: i64 = row.get(0);
            tracing::info!(
                event = events::LEASE_ACQUIRED,
                holder,
                fence = token,
                ttl_ms,
                "lease acquired"
            );
            let client = Arc::new(client);
            let lost = Arc::new(AtomicBool::new(false));
            let fence = Fence {
                holder: holder.to_string(),
                token,
                ttl_ms,
            };
            let heartbeat = tokio::spawn(heartbeat(
                client.clone(),
                t.clone(),
                fence.clone(),
                ttl,
                lost.clone(),
            ));
            return Ok(Lease {
                client,
                tables: t.clone(),
                fence,
                lost,
                heartbeat,
            });
        }
        let info = show(&client, t).await?;
        if stop.load(Ordering::SeqCst) {
            return Err(Error::Terminated);
        }
        let waited = started.elapsed();
        let Some(delay) = next_poll(backoff.next(), waited, timeout) else {
            let info = info.unwrap_or(LeaseInfo {
                holder: None,
                fence: 0,
                expires_at: None,
                held: false,
            });
            return Err(Error::LeaseTimeout {
                waited_ms: waited.as_millis(),
                holder: info.holder.unwrap_or_else(|| "nobody".into()),
                fence: info.fence,
                expires: info.expires_at.unwrap_or_else(|| "-".into()),
            });
        };
        if let Some(i) = &info {
            tracing::info!(
                event = events::LEASE_WAITING,
                holder = i.holder.as_deref().unwrap_or(""),
                fence = i.fence,
                expires_at = i.expires_at.as_deref().unwrap_or(""),
                delay_ms = delay.as_millis() as u64,
                "lease held by another runner; waiting"
            );
        }
        tokio::time::sleep(delay).await;
    }
}

/// The delays between acquisition attempts: exponential from 100 ms, capped at 2 s, jittered
/// so runners started together do not poll in lockstep.
fn acquire_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
        .build()
}

/// How long to sleep before the next acquisition attempt, given the backoff's proposal and how
/// long we have waited; `None` when the timeout has passed (give up: exit 11). Never sleeps
/// past the timeout, so the last attempt happens at it.
fn next_poll(proposed: Option<Duration>, waited: Duration, timeout: Duration) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|d| !d.is_zero())?;
    Some(proposed.unwrap_or(Duration::from_secs(1)).min(left))
}

/// How often the heartbeat renews: three times per TTL, so one slow or failed renewal still
/// leaves time for another before the lease expires.
fn heartbeat_period(ttl: Duration) -> Duration {
    ttl / 3
}

/// What one heartbeat renewal found.
#[derive(Debug, PartialEq, Eq)]
enum Beat {
    /// Our row was extended.
    Renewed,
    /// No row matched our holder, fence and an unexpired lease: it expired or was taken.
    Lost,
    /// The statement failed (network, server): not yet a loss; the fenced write decides.
    Failed,
}

impl Beat {
    fn of<E>(renewal: &std::result::Result<u64, E>) -> Beat {
        match renewal {
            Ok(1) => Beat::Renewed,
            Ok(_) => Beat::Lost,
            Err(_) => Beat::Failed,
        }
    }
}

async fn heartbeat(
    client: Arc<Client>,
    t: Tables,
    fence: Fence,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let sql = format!(
        "UPDATE {} SET expires_at = clock_timestamp() + INTERVAL '1 millisecond' * $3::INT8
         WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8 AND expires_at > clock_timestamp()",
        t.lease
    );
    let period = heartbeat_period(ttl);
    loop {
        tokio::time::sleep(period).await;
        let renewed = client
            .execute(&sql, &[&fence.holder, &fence.token, &fence.ttl_ms])
            .await;
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

impl Lease {
    /// The heartbeat saw the lease expire or change hands.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Asks the database, on the lease's own connection, whether the lease is still ours: our
    /// holder and fence, unexpired in database time. `None` when it cannot tell (the query
    /// failed or took longer than a few seconds).
    pub async fn still_ours(&self) -> Option<bool> {
        let sql = format!(
            "SELECT holder IS NOT DISTINCT FROM $1::TEXT AND fence = $2::INT8 AND expires_at > clock_timestamp() FROM {} WHERE id = 1",
            self.tables.lease
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&self.fence.holder, &self.fence.token];
        let q = self.client.query_opt(&sql, &params);
        match tokio::time::timeout(Duration::from_secs(5), q).await {
            Ok(Ok(Some(row))) => row
                .try_get::<_, Option<bool>>(0)
                .ok()
                .map(|b| b.unwrap_or(false)),
            Ok(Ok(None)) => Some(false),
            _ => None,
        }
    }

    /// A handle that frees the lease, usable after the lease itself was dropped with the
    /// work that held it.
    pub fn releaser(&self) -> Releaser {
        Releaser {
            client: self.client.clone(),
            tables: self.tables.clone(),
            fence: self.fence.clone(),
            heartbeat: self.heartbeat.abort_handle(),
        }
    }
}

/// Frees a lease (see [`Lease::releaser`]).
pub struct Releaser {
    client: Arc<Client>,
    tables: Tables,
    fence: Fence,
    heartbeat: tokio::task::AbortHandle,
}

impl Releaser {
    /// Frees the lease if it is still ours. Bounded in time: a release that cannot complete
    /// leaves the lease to expire by itself (logged, not an error: the work is over).
    pub async fn release(self) {
        self.heartbeat.abort();
        let sql = format!(
            "UPDATE {} SET holder = NULL, expires_at = NULL WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8",
            self.tables.lease
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&self.fence.holder, &self.fence.token];
        let q = self.client.execute(&sql, &params);
        let (holder, fence) = (&self.fence.holder, self.fence.token);
        match tokio::time::timeout(Duration::from_secs(5), q).await {
            Ok(Ok(_)) => {
                tracing::info!(event = events::LEASE_RELEASED, holder = %holder, fence, "lease released");
            }
            Ok(Err(e)) => {
                tracing::warn!(event = events::LEASE_RELEASE_FAILED, holder = %holder, fence, error = %e, "lease release failed; it will expire by itself");
            }
            Err(_) => {
                tracing::warn!(event = events::LEASE_RELEASE_FAILED, holder = %holder, fence, "lease release timed out; it will expire by itself");
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[cfg(test)]
mod tests {
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
    fn acquisition_delays_are_jittered_and_bounded() {
        let delays: Vec<Duration> = acquire_backoff().take(50).collect();
        assert_eq!(delays.len(), 50, "unbounded: the timeout ends the polling");
        // backon's jitter adds up to one more delay: [100 ms, 4 s].
        for d in &delays {
            assert!(*d >= Duration::from_millis(100) && *d <= 4 * S, "{d:?}");
        }
        // Two runners started together do not poll in lockstep.
        let other: Vec<Duration> = acquire_backoff().take(50).collect();
        assert_ne!(delays, other);
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

    #[test]
    fn lease_expiry_is_shown_in_rfc3339_utc() {
        assert_eq!(
            rfc3339_micros(Some(1_700_000_000_123_456)).as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(rfc3339_micros(None), None);
    }
}

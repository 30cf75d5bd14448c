//! A held lease: taken by polling with backoff (setup, acquisition and the ledger re-read in
//! one flight), kept by a heartbeat on its own connection (every TTL/3) that reconnects when
//! that connection drops, watched for loss, and released on every path — falling back to the
//! migration connection when the lease's is gone, and after SIGTERM, when the work holding it
//! was abandoned ([`Guard::abandon`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::backoff;
use crate::connect::{DbUrl, wait_and_connect_side};
use crate::error::{Error, Result};
use crate::log::events;
use crate::store::fence::Fence;
use crate::store::ledger::{self, AppliedRow};
use crate::store::{Tables, lease, setup};

/// The lease's own connection, replaced when it drops.
pub struct LeaseConn {
    client: std::sync::Mutex<Arc<Client>>,
    url: DbUrl,
    wait: Duration,
}

impl LeaseConn {
    /// Wraps `client`, reconnecting to `url` within `wait` when it drops.
    pub fn new(client: Client, url: DbUrl, wait: Duration) -> LeaseConn {
        LeaseConn {
            client: std::sync::Mutex::new(Arc::new(client)),
            url,
            wait,
        }
    }

    /// The current connection.
    pub fn get(&self) -> Arc<Client> {
        match self.client.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A new connection in place of a dropped one (bounded by `budget`, and by the wait timeout).
    async fn reconnect(&self, budget: Duration) -> Result<Arc<Client>> {
        let fresh = Arc::new(wait_and_connect_side(&self.url, budget.min(self.wait)).await?);
        if let Ok(mut c) = self.client.lock() {
            *c = fresh.clone();
        }
        Ok(fresh)
    }
}

/// A lease we hold. Dropping it stops the heartbeat; [`Lease::releaser`] frees it.
pub struct Lease {
    conn: Arc<LeaseConn>,
    tables: Tables,
    /// Our identity for fenced statements.
    pub fence: Fence,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Sleeps for `d`, or returns `Err(Terminated)` as soon as `cancel` fires.
pub async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Error::Terminated),
    }
}

/// How long to sleep before the next acquisition attempt, given the backoff's proposal and how
/// long we have waited; `None` when the timeout has passed (give up: exit 11). Never sleeps
/// past the timeout, so the last attempt happens at it.
fn next_poll(proposed: Option<Duration>, waited: Duration, timeout: Duration) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|d| !d.is_zero())?;
    Some(proposed.unwrap_or(Duration::from_secs(1)).min(left))
}

/// One acquisition attempt: the bookkeeping setup (when asked), the conditional UPDATE and a
/// ledger read, pipelined in one flight. The read runs after the UPDATE, so when the lease was
/// taken it sees every commit of earlier holders: the ledger as it is under our lease.
async fn attempt(
    client: &Client,
    t: &Tables,
    holder: &str,
    ttl_ms: i64,
    setup_sql: Option<&str>,
) -> Result<(Option<i64>, Option<Vec<AppliedRow>>)> {
    let read_sql = ledger::read_sql(t);
    let (set_up, acquired, read) = tokio::join!(
        async {
            match setup_sql {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        },
        lease::try_acquire(client, t, holder, ttl_ms),
        client.simple_query(&read_sql)
    );
    // When the acquisition worked, the tables are there, whatever the setup met (a peer
    // creating them at the same moment): the lease is ours and must not be taken twice.
    let token = match (acquired, set_up) {
        (Ok(Some(token)), _) => Some(token),
        (_, Err(e)) => {
            return Err(Error::db(
                format!("creating {} and {}", t.ledger(), t.lease()),
                e,
            ));
        }
        (acquired, Ok(())) => acquired?,
    };
    // A seed-made ledger lacks our columns: the caller adopts it and reads it again.
    let rows = match read {
        Ok(msgs) => Some(ledger::parse_rows(&msgs)?),
        Err(_) => None,
    };
    Ok((token, rows))
}

/// Takes the lease, polling with jittered backoff until `timeout` (exit 11) or `cancel`;
/// creates the bookkeeping tables first when `set_up` (tolerating races with peers). `conn`
/// becomes the lease's own connection (heartbeat and release): the heartbeat must never land
/// inside a migration's transaction. Also returns the ledger's rows read right after taking
/// it (`None`: read them again, a seed-made ledger needs adopting).
pub async fn acquire(
    conn: LeaseConn,
    t: &Tables,
    holder: &str,
    ttl: Duration,
    timeout: Duration,
    set_up: bool,
    cancel: &CancellationToken,
) -> Result<(Lease, Option<Vec<AppliedRow>>)> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut delays = backoff::lease();
    let setup_sql = setup::create_sql(t);
    let mut races = backoff::setup_race();
    let mut pending_setup = set_up;
    let client = conn.get();
    loop {
        let sql = pending_setup.then_some(setup_sql.as_str());
        let (token, rows) = match attempt(&client, t, holder, ttl_ms, sql).await {
            Ok(r) => r,
            Err(e) if pending_setup && e.sqlstate().is_some_and(crate::sqlstate::is_setup_race) => {
                match races.next() {
                    Some(delay) => {
                        tracing::info!(
                            event = events::SETUP_RACE,
                            what = "creating the bookkeeping tables",
                            sqlstate = e.sqlstate().unwrap_or(""),
                            delay_ms = delay.as_millis() as u64,
                            "another runner set this up at the same moment; re-checking"
                        );
                        sleep_or_cancel(delay, cancel).await?;
                        continue;
                    }
                    None => {
                        tracing::warn!(
                            event = events::SETUP_RACE,
                            what = "creating the bookkeeping tables",
                            sqlstate = e.sqlstate().unwrap_or(""),
                            "the conflict outlasted every re-check: not a race with a peer"
                        );
                        return Err(e);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        pending_setup = false;
        if let Some(token) = token {
            tracing::info!(
                event = events::LEASE_ACQUIRED,
                holder,
                fence = token,
                ttl_ms,
                "lease acquired"
            );
            let conn = Arc::new(conn);
            let lost = Arc::new(AtomicBool::new(false));
            let fence = Fence {
                holder: holder.to_string(),
                token,
                ttl_ms,
            };
            let heartbeat = tokio::spawn(heartbeat(
                conn.clone(),
                t.clone(),
                fence.clone(),
                ttl,
                lost.clone(),
            ));
            let lease = Lease {
                conn,
                tables: t.clone(),
                fence,
                lost,
                heartbeat,
            };
            return Ok((lease, rows));
        }
        let info = lease::show(&client, t).await?;
        if cancel.is_cancelled() {
            return Err(Error::Terminated);
        }
        let waited = started.elapsed();
        let Some(delay) = next_poll(delays.next(), waited, timeout) else {
            let info = info.unwrap_or(lease::LeaseInfo {
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
        sleep_or_cancel(delay, cancel).await?;
    }
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

impl Lease {
    /// The lease's own connection: a side connection for short reads while the migration
    /// connection is busy (progress of a long statement). Never used inside a transaction.
    pub(crate) fn client(&self) -> Arc<Client> {
        self.conn.get()
    }

    /// The heartbeat saw the lease expire or change hands.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The error for a lease the heartbeat found lost, `what` saying where we were.
    pub fn lost_error(&self, what: String) -> Error {
        Error::LeaseLost {
            fence: self.fence.token,
            detail: what,
        }
    }

    /// Asks the database, on the lease's own connection, whether the lease is still ours.
    /// `None` when it cannot tell (the query failed or took longer than a few seconds).
    pub async fn still_ours(&self) -> Option<bool> {
        let client = self.conn.get();
        let q = lease::is_ours(&client, &self.tables, &self.fence);
        match tokio::time::timeout(Duration::from_secs(5), q).await {
            Ok(Ok(ours)) => Some(ours),
            _ => None,
        }
    }

    /// A handle that frees the lease, usable after the lease itself was dropped with the
    /// work that held it.
    pub fn releaser(&self) -> Releaser {
        Releaser {
            conn: self.conn.clone(),
            tables: self.tables.clone(),
            fence: self.fence.clone(),
            heartbeat: self.heartbeat.abort_handle(),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Frees a lease (see [`Lease::releaser`]).
pub struct Releaser {
    conn: Arc<LeaseConn>,
    tables: Tables,
    fence: Fence,
    heartbeat: tokio::task::AbortHandle,
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
}

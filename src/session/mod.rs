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

mod guard;
mod heartbeat;

pub use guard::{Guard, Releaser};
use heartbeat::heartbeat;

/// The lease's own connection, replaced when it drops.
pub struct LeaseConn {
    client: std::sync::Mutex<Arc<Client>>,
    url: DbUrl,
    wait: Duration,
}

impl LeaseConn {
    /// Wraps `client` (shared: a fleet hands a finished run's lease connection to the next
    /// run), reconnecting to `url` within `wait` when it drops.
    pub fn new(client: Arc<Client>, url: DbUrl, wait: Duration) -> LeaseConn {
        LeaseConn {
            client: std::sync::Mutex::new(client),
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

/// The ledger as the acquisition's flight read it, right after the lease was taken: every
/// commit of earlier holders is in it.
pub enum Reread {
    /// Its rows.
    Rows(Vec<AppliedRow>),
    /// Not read: a three-column ledger lacking our columns (adopt it, then read it), or a new
    /// connection after a reconnect.
    ReadAgain,
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
) -> Result<(Option<i64>, Reread)> {
    let read_sql = ledger::read_sql(t);
    let (set_up, acquired, read) = tokio::join!(
        async {
            match setup_sql {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        },
        lease::try_acquire(client, t, holder, ttl_ms),
        ledger::query_rows(client, &read_sql)
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
    // A three-column ledger lacks our columns: the caller adopts it and reads it again.
    let rows = match read {
        Ok(rows) => Reread::Rows(rows?),
        Err(_) => Reread::ReadAgain,
    };
    Ok((token, rows))
}

/// `e` carries a SQLSTATE for which `is` holds.
fn has_code(e: &Error, is: fn(&str) -> bool) -> bool {
    e.sqlstate().is_some_and(|c| is(c.code()))
}

/// A setup statement lost a race to a peer: wait the next re-check's delay, or give the error
/// back when the conflict outlasted every re-check (then it is not a race).
async fn lost_setup_race(
    races: &mut impl Iterator<Item = Duration>,
    e: Error,
    cancel: &CancellationToken,
) -> Result<()> {
    match races.next() {
        Some(delay) => {
            tracing::info!(
                event = events::SETUP_RACE,
                what = "creating the bookkeeping tables",
                sqlstate = e.sqlstate().map_or("", |c| c.code()),
                delay_ms = delay.as_millis() as u64,
                "another runner set this up at the same moment; re-checking"
            );
            sleep_or_cancel(delay, cancel).await
        }
        None => {
            tracing::warn!(
                event = events::SETUP_RACE,
                what = "creating the bookkeeping tables",
                sqlstate = e.sqlstate().map_or("", |c| c.code()),
                "the conflict outlasted every re-check: not a race with a peer"
            );
            Err(e)
        }
    }
}

/// Takes the lease, polling with jittered backoff until `timeout` (exit 11) or `cancel`;
/// creates the bookkeeping tables first (tolerating races with peers). `conn`
/// becomes the lease's own connection (heartbeat and release): the heartbeat must never land
/// inside a migration's transaction. Also returns the ledger's rows read right after taking
/// it (`None`: read them again, a three-column ledger needs adopting).
pub async fn acquire(
    conn: LeaseConn,
    t: &Tables,
    holder: &str,
    ttl: Duration,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(Lease, Reread)> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut delays = backoff::lease();
    let setup_sql = setup::create_sql(t);
    let mut races = backoff::setup_race();
    let mut pending_setup = true;
    let mut owner_added = false;
    let client = conn.get();
    loop {
        let sql = pending_setup.then_some(setup_sql.as_str());
        let (token, rows) = match attempt(&client, t, holder, ttl_ms, sql).await {
            Ok(r) => r,
            Err(e) if pending_setup && has_code(&e, crate::sqlstate::is_setup_race) => {
                lost_setup_race(&mut races, e, cancel).await?;
                continue;
            }
            // A lease table made by an earlier version: add the owner columns, then again.
            Err(e) if !owner_added && has_code(&e, crate::sqlstate::is_undefined_column_code) => {
                setup::add_lease_owner(&client, t).await?;
                (pending_setup, owner_added) = (false, true);
                continue;
            }
            Err(e) => return Err(e),
        };
        pending_setup = false;
        if let Some(token) = token {
            let fence = Fence {
                holder: holder.to_string(),
                token,
                ttl_ms,
            };
            return Ok((Lease::start(conn, t, fence, ttl), rows));
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
                waited,
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

impl Lease {
    /// The lease just taken with `fence`: logs it and starts the heartbeat on `conn`.
    fn start(conn: LeaseConn, t: &Tables, fence: Fence, ttl: Duration) -> Lease {
        tracing::info!(
            event = events::LEASE_ACQUIRED,
            holder = %fence.holder,
            fence = fence.token,
            ttl_ms = fence.ttl_ms,
            "lease acquired"
        );
        let conn = Arc::new(conn);
        let lost = Arc::new(AtomicBool::new(false));
        // In the run's span: a fleet's heartbeat events carry their target too.
        let heartbeat = tokio::spawn(tracing::Instrument::in_current_span(heartbeat(
            conn.clone(),
            t.clone(),
            fence.clone(),
            ttl,
            lost.clone(),
        )));
        Lease {
            conn,
            tables: t.clone(),
            fence,
            lost,
            heartbeat,
        }
    }

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

#[cfg(test)]
mod tests;

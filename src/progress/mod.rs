//! Progress of a long migration statement, read on a side connection (never the busy one) and
//! logged as `migration.progress` every `MIGRATE_PROGRESS_INTERVAL`.
//!
//! - **PostgreSQL:** one query over the `pg_stat_progress_*` views a migration can trigger
//!   (`create_index` for CREATE INDEX / REINDEX, `cluster` for CLUSTER / VACUUM FULL,
//!   `vacuum`, `analyze`, `copy`), restricted to the busy connection's backend pid (`$1`).
//!   The views show every column to a session of the same user, which the side connection is.
//!   The query names only columns PostgreSQL 14 to 17 all have (PostgreSQL 17 renamed the
//!   vacuum dead-tuple columns, so those are left out); on an older server the query fails,
//!   and the events carry version, statement and elapsed time only.
//! - **CockroachDB:** a schema change runs as a job (`crdb_internal.jobs`) that has no session
//!   id. We tie jobs to our statement by **who and when**: schema-change jobs (`SCHEMA CHANGE`,
//!   `NEW SCHEMA CHANGE`) of `current_user` still pending or running, created no earlier than
//!   our flight started (the job's age is measured by the server, our elapsed time by us: two
//!   durations, so clock skew does not matter; one second of slack covers the send). We hold
//!   the lease, so no other runner of ours makes schema changes meanwhile; a job started in
//!   the same window by another session of the same user would also be shown (documented
//!   limit). Matching the job's `description` to the statement text is not used: CockroachDB
//!   rewrites it (qualified names, normalised spacing) and truncates it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

mod cockroach;
mod postgres;

use crate::connect::Flavour;
use crate::log::events;

/// What a progress counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Heap or index blocks (8 kB pages).
    Blocks,
    /// Rows.
    Tuples,
    /// Bytes (COPY).
    Bytes,
    /// Transactions waited for (CREATE INDEX CONCURRENTLY waiting for writers).
    Lockers,
    /// Partitions or child tables.
    Partitions,
}

impl Unit {
    /// The word used in the text line and in the `unit` field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unit::Blocks => "blocks",
            Unit::Tuples => "tuples",
            Unit::Bytes => "bytes",
            Unit::Lockers => "lockers",
            Unit::Partitions => "partitions",
        }
    }
}

/// One `done` of `total` counter (`total` 0 or unknown when the server cannot tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counter {
    /// Done so far.
    pub done: Option<i64>,
    /// The total, when the server knows it (0 means unknown on PostgreSQL).
    pub total: Option<i64>,
}

impl Counter {
    /// A counter from nullable columns.
    pub(crate) fn new(done: Option<i64>, total: Option<i64>) -> Counter {
        Counter { done, total }
    }

    /// Has a positive total, so a fraction means something.
    fn has_total(&self) -> bool {
        self.total.is_some_and(|t| t > 0)
    }
}

/// One sample of what the server says about a long-running command of ours.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Sample {
    /// The command: `CREATE INDEX`, `CLUSTER`, `VACUUM FULL`, `VACUUM`, `ANALYZE`,
    /// `COPY FROM`, or the CockroachDB job type (`SCHEMA CHANGE`, `NEW SCHEMA CHANGE`).
    pub command: String,
    /// The phase as the server names it (`building index: scanning table`), or the job's
    /// `running_status` (else its status) on CockroachDB.
    pub phase: String,
    /// The table worked on, when known.
    pub relation: Option<String>,
    /// Blocks done / total.
    pub blocks: Counter,
    /// Tuples done / total.
    pub tuples: Counter,
    /// Bytes done / total (COPY).
    pub bytes: Counter,
    /// Lockers waited for / total.
    pub lockers: Counter,
    /// Partitions (or child tables) done / total.
    pub partitions: Counter,
    /// The fraction done (0 to 1): the job's `fraction_completed`, or the headline counter's.
    pub fraction: Option<f64>,
    /// The CockroachDB job id.
    pub job_id: Option<i64>,
    /// The job's age in milliseconds (CockroachDB; used to tie it to our statement).
    pub age_ms: Option<i64>,
}

impl Sample {
    /// The counter the text line shows: the first with a known total among tuples, blocks,
    /// bytes, lockers and partitions (CREATE INDEX reports blocks while scanning the table
    /// and tuples while loading the tree), else the first with a count at all.
    pub(crate) fn headline(&self) -> Option<(Counter, Unit)> {
        let all = [
            (self.tuples, Unit::Tuples),
            (self.blocks, Unit::Blocks),
            (self.bytes, Unit::Bytes),
            (self.lockers, Unit::Lockers),
            (self.partitions, Unit::Partitions),
        ];
        all.iter()
            .find(|(c, _)| c.has_total())
            .or_else(|| all.iter().find(|(c, _)| c.done.is_some_and(|d| d > 0)))
            .copied()
    }

    /// The short line for humans, e.g. `building index: scanning table: 41% (2.1M of 5.0M
    /// blocks)`, or `schema change job 42 (backfilling): 41%` on CockroachDB.
    pub(crate) fn text(&self) -> String {
        let mut s = match self.job_id {
            Some(id) => format!("{} job {id} ({})", self.command.to_lowercase(), self.phase),
            None if self.phase.is_empty() => self.command.to_lowercase(),
            None => self.phase.clone(),
        };
        if let Some(f) = self.fraction {
            s.push_str(&format!(": {}%", percent(f)));
        }
        if self.job_id.is_none()
            && let Some((c, unit)) = self.headline()
        {
            let done = c.done.unwrap_or(0);
            let sep = if self.fraction.is_some() { " " } else { ": " };
            if c.has_total() {
                let total = c.total.unwrap_or(0);
                s.push_str(&format!(
                    "{sep}({} of {} {})",
                    compact(done),
                    compact(total),
                    unit.as_str()
                ));
            } else {
                s.push_str(&format!("{sep}({} {})", compact(done), unit.as_str()));
            }
        }
        s
    }
}

/// `done / total`, clamped to 0..=1, when the total is known.
fn fraction(c: Counter) -> Option<f64> {
    let (done, total) = (c.done?, c.total?);
    if total <= 0 {
        return None;
    }
    Some((done as f64 / total as f64).clamp(0.0, 1.0))
}

/// Whole percent, rounded down so 99.9% never reads as 100%.
fn percent(f: f64) -> u32 {
    (f.clamp(0.0, 1.0) * 100.0).floor() as u32
}

/// `950`, `12.3K`, `2.1M`, `5.0G`: one decimal above a thousand.
pub(crate) fn compact(n: i64) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")] {
        if a >= scale {
            return format!("{sign}{:.1}{suffix}", a / scale);
        }
    }
    n.to_string()
}

/// Reads the progress of our busy connection (backend `pid`, PostgreSQL) or of our user's
/// running schema-change jobs (CockroachDB; `pid` unused, see the module docs) on `client`,
/// a side connection.
pub(crate) async fn sample(
    client: &Client,
    flavour: Flavour,
    pid: i32,
) -> Result<Vec<Sample>, tokio_postgres::Error> {
    match flavour {
        Flavour::PostgreSQL => postgres::sample(client, pid).await,
        Flavour::CockroachDB => cockroach::sample(client).await,
    }
}

/// What [`watched`] needs to report progress: the side connection, the server, the busy
/// connection's backend pid and how often (`MIGRATE_PROGRESS_INTERVAL`, never zero).
#[derive(Clone)]
pub(crate) struct Watch {
    /// The side connection (the lease's).
    pub client: Arc<Client>,
    /// The server.
    pub flavour: Flavour,
    /// The busy connection's `pg_backend_pid()`.
    pub pid: i32,
    /// How often to log.
    pub interval: Duration,
}

/// Runs `work`, logging `migration.progress` for `version` every interval meanwhile (when
/// `watch` is set); `statement` is the 1-based statement in flight, updated by `work`.
pub(crate) async fn watched<T>(
    watch: Option<&Watch>,
    version: i64,
    statement: Arc<AtomicUsize>,
    work: impl std::future::Future<Output = T>,
) -> T {
    let Some(w) = watch else {
        return work.await;
    };
    let watching = self::watch(&w.client, w.flavour, w.pid, version, statement, w.interval);
    tokio::select! {
        biased;
        r = work => r,
        never = watching => match never {},
    }
}

/// Logs `migration.progress` every `interval` while it runs; never returns (drop the future to
/// stop it: run it in a `select!` beside the flight). `statement` is the 1-based index of the
/// statement in flight (0: none known). One event per sampled command; with nothing sampled
/// (or the sample failing) one event with version, statement and elapsed time only. A sample
/// is bounded by `interval` (at least a second), so a slow side connection skips a beat
/// instead of piling queries up.
pub(crate) async fn watch(
    client: &Client,
    flavour: Flavour,
    pid: i32,
    version: i64,
    statement: Arc<AtomicUsize>,
    interval: Duration,
) -> Infallible {
    let started = Instant::now();
    let bound = interval.max(Duration::from_secs(1));
    let mut warned = false;
    loop {
        tokio::time::sleep(interval).await;
        let sampled = match tokio::time::timeout(bound, sample(client, flavour, pid)).await {
            Ok(Ok(s)) => cockroach::ours(s, started.elapsed()),
            Ok(Err(e)) => {
                if !warned {
                    tracing::debug!(event = events::MIGRATION_PROGRESS, version, error = %e, "progress not readable; logging elapsed time only");
                    warned = true;
                }
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        let statement = statement.load(Ordering::SeqCst);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if sampled.is_empty() {
            tracing::info!(
                event = events::MIGRATION_PROGRESS,
                version,
                statement,
                elapsed_ms,
                "migration {version}: statement {statement} running for {}s",
                elapsed_ms / 1000
            );
        }
        for p in &sampled {
            log(version, statement, elapsed_ms, p);
        }
    }
}

/// One `migration.progress` event: flat fields (JSON logs flatten them), the text line as the
/// message (so `LOG_FORMAT=text` shows it).
fn log(version: i64, statement: usize, elapsed_ms: u64, p: &Sample) {
    let (done, total, unit) = match p.headline() {
        Some((c, u)) => (c.done, c.total.filter(|t| *t > 0), Some(u.as_str())),
        None => (None, None, None),
    };
    tracing::info!(
        event = events::MIGRATION_PROGRESS,
        version,
        statement,
        elapsed_ms,
        command = %p.command,
        phase = %p.phase,
        relation = p.relation.as_deref(),
        done,
        total,
        unit,
        fraction = p.fraction,
        percent = p.fraction.map(percent),
        blocks_done = p.blocks.done,
        blocks_total = p.blocks.total,
        tuples_done = p.tuples.done,
        tuples_total = p.tuples.total,
        job_id = p.job_id,
        "migration {version}: {}",
        p.text()
    );
}

#[cfg(test)]
mod tests;

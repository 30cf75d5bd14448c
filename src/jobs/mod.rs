//! CockroachDB schema-change jobs that outlive their client: found at start (after the lease,
//! before the first migration), waited for while they run, and turned into exit 32 when one
//! is stuck on a table the migration in flight touches. Never called on PostgreSQL.
//!
//! Decisions (documented in docs/cockroachdb.md):
//! - **Which jobs:** `SCHEMA CHANGE` and `NEW SCHEMA CHANGE` jobs (not `SCHEMA CHANGE GC`:
//!   those wait out the GC TTL, 25 hours by default, and block nothing) whose descriptors
//!   include a table of the current database, in a non-terminal status: `pending`, `running`,
//!   `retry-running` (moving forward), `reverting`, `retry-reverting`, `cancel-requested`
//!   (moving back), `paused`, `pause-requested` (stopped until someone resumes them) and
//!   `revert-failed` (stopped for good: needs manual cleanup). `failed`, `canceled` and
//!   `succeeded` jobs are over: a failed schema change was rolled back by CockroachDB, and
//!   the ledger (journal, dirty mark) already says what to rerun.
//! - **Waiting:** jobs moving forward or back finish by themselves, so we wait for them,
//!   polling with backoff, up to `MIGRATE_JOB_WAIT_TIMEOUT` (then exit 11, as for the lease:
//!   a retried pod waits again).
//! - **Exit 32:** a job that stays put (paused, pause-requested, revert-failed), or one still
//!   reverting or failed after the wait, on a table the migration in flight names: running it
//!   would fight the job or build on a half-made change. The message names the job and the
//!   command to inspect it (`SHOW JOB <id>`). Jobs on other tables are reported
//!   (`job.found`) and left alone.
//! - **After a cut COMMIT** (`committed.rs`): when the connection drops while a step's COMMIT
//!   waits and the ledger then says the step committed, its jobs (created since it began, on
//!   the tables it names, any status) are waited for; anything but `succeeded`, or no listing
//!   at all for a step with DDL, marks the version dirty (exit 31).

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::log::events;

/// A CockroachDB schema-change job on a table of our database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Job {
    /// The job id (`SHOW JOB <id>`).
    pub id: i64,
    /// `running`, `paused`, `reverting`, ... as CockroachDB names it.
    pub status: String,
    /// The statement that started it, as CockroachDB rewrote it.
    pub description: String,
    /// `fraction_completed`, 0 to 1.
    pub fraction: Option<f64>,
    /// The job's detailed running status, when it has one.
    pub running_status: Option<String>,
    /// The tables of our database the job works on (bare names).
    pub tables: Vec<String>,
    /// The job's error, when it recorded one.
    pub error: Option<String>,
}

/// What a job's status means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Motion {
    /// Moving forward: wait for it.
    Forward,
    /// Being reverted: it ends by itself; wait for it.
    Back,
    /// Stopped until someone acts (paused, revert-failed).
    Stopped,
    /// Over (failed, canceled, succeeded, or a status we do not know).
    Over,
}

impl Job {
    /// What the job's status means for us.
    pub(crate) fn motion(&self) -> Motion {
        motion(&self.status)
    }

    /// The job works on one of `tables` (bare or qualified names, compared without
    /// schema and database, case-insensitively).
    pub(crate) fn touches(&self, tables: &[String]) -> bool {
        let bare = |n: &str| {
            n.rsplit('.')
                .next()
                .unwrap_or(n)
                .trim_matches('"')
                .to_lowercase()
        };
        tables
            .iter()
            .any(|t| self.tables.iter().any(|j| bare(j) == bare(t)))
    }

    /// The short line for `status` and logs: `job 42 running 41% on users: ALTER TABLE ...`.
    pub fn text(&self) -> String {
        let mut s = format!("job {} {}", self.id, self.status);
        if let Some(f) = self.fraction.filter(|f| *f > 0.0) {
            s.push_str(&format!(" {}%", (f.clamp(0.0, 1.0) * 100.0).floor() as u32));
        }
        if !self.tables.is_empty() {
            s.push_str(&format!(" on {}", self.tables.join(", ")));
        }
        s.push_str(&format!(": {}", self.description));
        s
    }
}

/// The meaning of a CockroachDB job status.
pub(crate) fn motion(status: &str) -> Motion {
    match status {
        "pending" | "running" | "retry-running" => Motion::Forward,
        "reverting" | "retry-reverting" | "cancel-requested" => Motion::Back,
        "paused" | "pause-requested" | "revert-failed" => Motion::Stopped,
        _ => Motion::Over,
    }
}

/// The statuses of live jobs (every non-terminal one), as a SQL list.
pub(crate) const LIVE: &str = "('pending', 'running', 'retry-running', 'reverting', \
                               'retry-reverting', 'cancel-requested', 'paused', \
                               'pause-requested', 'revert-failed')";

/// The live schema-change jobs on tables of the current database, oldest first: id, status,
/// description, fraction_completed, running_status, error, and the names of the tables of
/// this database among the job's descriptors.
pub(crate) fn find_sql() -> String {
    internal_sql(&format!("j.status IN {LIVE}"))
}

/// [`find_sql`] for every schema-change job created at most `ms` milliseconds ago by the
/// server's clock, whatever its status (one that failed a moment ago included).
pub(crate) fn recent_sql(ms: i64) -> String {
    internal_sql(&recent(ms, "j."))
}

/// The condition "created at most `ms` milliseconds ago" on the columns of `prefix`.
pub(crate) fn recent(ms: i64, prefix: &str) -> String {
    format!("{prefix}created::TIMESTAMPTZ >= now() - INTERVAL '1 millisecond' * {ms}")
}

/// The schema-change jobs on tables of the current database that meet `filter`, read from
/// `crdb_internal.jobs` (alias `j`).
fn internal_sql(filter: &str) -> String {
    format!(
        "SELECT j.job_id, j.status, j.description, j.fraction_completed, j.running_status, j.error, \
                ARRAY(SELECT t.name FROM crdb_internal.tables AS t \
                       WHERE t.database_name = current_database() AND t.table_id = ANY (j.descriptor_ids) \
                       ORDER BY t.name) AS tables \
           FROM crdb_internal.jobs AS j \
          WHERE j.job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') \
            AND {filter} \
            AND EXISTS (SELECT 1 FROM crdb_internal.tables AS t \
                         WHERE t.database_name = current_database() AND t.table_id = ANY (j.descriptor_ids)) \
          ORDER BY j.created, j.job_id"
    )
}

/// A job from its row's plain values (the order of [`find_sql`]'s columns).
pub(crate) fn from_values(
    id: i64,
    status: Option<String>,
    description: Option<String>,
    fraction: Option<f64>,
    running_status: Option<String>,
    error: Option<String>,
    tables: Option<Vec<Option<String>>>,
) -> Job {
    Job {
        id,
        status: status.unwrap_or_default(),
        description: description.unwrap_or_default(),
        fraction: fraction.filter(|f| f.is_finite()),
        running_status: running_status.filter(|s| !s.is_empty()),
        tables: tables.unwrap_or_default().into_iter().flatten().collect(),
        error: error.filter(|s| !s.is_empty()),
    }
}

/// The live schema-change jobs on tables of the current database, through whichever surface
/// the server and user allow; none (after a `job.unlisted` warning) when neither does
/// (`listing.rs`).
pub(crate) async fn find(client: &Client) -> Result<Vec<Job>> {
    listing::find(client).await
}

/// The schema-change jobs on tables of the current database read from `crdb_internal` by `sql`
/// ([`find_sql`], [`recent_sql`]).
pub(crate) async fn find_internal(
    client: &Client,
    sql: &str,
) -> std::result::Result<Vec<Job>, tokio_postgres::Error> {
    let rows = client.query_typed(sql, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(from_values(
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ))
        })
        .collect()
}

/// Logs `job.found` for each job.
pub(crate) fn report(jobs: &[Job]) {
    for j in jobs {
        tracing::info!(
            event = events::JOB_FOUND,
            job_id = j.id,
            status = %j.status,
            description = %j.description,
            fraction = j.fraction,
            running_status = j.running_status.as_deref(),
            tables = %j.tables.join(","),
            "schema-change {}; inspect it with `SHOW JOB {}`",
            j.text(),
            j.id
        );
    }
}

/// The jobs still moving (forward or back), which [`wait_running`] waits for.
pub(crate) fn moving(jobs: &[Job]) -> Vec<&Job> {
    jobs.iter()
        .filter(|j| matches!(j.motion(), Motion::Forward | Motion::Back))
        .collect()
}

/// Finds the jobs, then polls with backoff until none is moving (running, pending, reverting),
/// logging `job.waiting` at each poll and `job.done` at the end. Returns the jobs left (the
/// stopped ones), for [`check`]. Errors: [`Error::JobWaitTimeout`] (exit 11) when jobs still
/// move after `timeout`; [`Error::Terminated`] on `cancel`.
pub(crate) async fn wait_running(
    client: &Client,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<Job>> {
    let started = Instant::now();
    let mut delays = crate::backoff::job_poll();
    let mut waited_for = false;
    loop {
        let jobs = find(client).await?;
        let moving = moving(&jobs);
        let Some(first) = moving.first() else {
            if waited_for {
                tracing::info!(
                    event = events::JOB_DONE,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "schema-change jobs no longer running"
                );
            }
            return Ok(jobs);
        };
        let waited = started.elapsed();
        let Some(delay) = next_poll(delays.next(), waited, timeout) else {
            return Err(Error::JobWaitTimeout {
                id: first.id,
                status: first.status.clone(),
                description: first.description.clone(),
                waited,
            });
        };
        waited_for = true;
        pause(&moving, waited, delay, cancel).await?;
    }
}

/// Logs `job.waiting` for each of `moving`, then sleeps `delay` ([`Error::Terminated`] on
/// `cancel`).
pub(crate) async fn pause(
    moving: &[&Job],
    waited: Duration,
    delay: Duration,
    cancel: &CancellationToken,
) -> Result<()> {
    for j in moving {
        tracing::info!(
            event = events::JOB_WAITING,
            job_id = j.id,
            status = %j.status,
            fraction = j.fraction,
            running_status = j.running_status.as_deref(),
            waited_ms = waited.as_millis() as u64,
            delay_ms = delay.as_millis() as u64,
            "waiting for schema-change {}",
            j.text()
        );
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = cancel.cancelled() => Err(Error::Terminated),
    }
}

/// Sleep before the next poll, never past the timeout; `None` once it has passed.
pub(crate) fn next_poll(
    proposed: Option<Duration>,
    waited: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|d| !d.is_zero())?;
    Some(proposed.unwrap_or(Duration::from_secs(2)).min(left))
}

/// Exit 32 ([`Error::BackgroundJob`]) for the first job that is stopped, reverting or failed
/// on one of `tables` (the tables the migration in flight names); `Ok` otherwise.
pub(crate) fn check(jobs: &[Job], tables: &[String]) -> Result<()> {
    let stuck = jobs.iter().find(|j| {
        (j.motion() != Motion::Forward && j.status != "succeeded" && j.status != "canceled")
            && j.touches(tables)
    });
    match stuck {
        Some(j) => Err(Error::BackgroundJob {
            id: j.id,
            status: j.status.clone(),
            description: j.description.clone(),
        }),
        None => Ok(()),
    }
}

/// At start, before the first migration (CockroachDB only): finds the live schema-change
/// jobs on our database's tables, logs `job.found` for each, waits for the moving ones
/// ([`wait_running`], bounded by `timeout`), then refuses ([`check`], exit 32) when one left
/// stopped is on a table the pending migrations name (`tables`, from [`words_of_steps`]).
pub(crate) async fn at_start(
    client: &Client,
    tables: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<()> {
    let found = find(client).await?;
    if found.is_empty() {
        return Ok(());
    }
    report(&found);
    let left = if moving(&found).is_empty() {
        found
    } else {
        wait_running(client, timeout, cancel).await?
    };
    check(&left, tables)
}

/// Every word of the statements the plan's steps will run ([`words_of`]).
pub(crate) fn words_of_steps(plan: &crate::plan::Plan<'_>) -> Vec<String> {
    let mut out: Vec<String> = plan
        .steps
        .iter()
        .flat_map(|s| {
            let m = &*s.migration;
            match s.direction {
                crate::plan::Direction::Up => m.up_statements.as_slice(),
                crate::plan::Direction::Down => m.down_statements.as_deref().unwrap_or(&[]),
            }
        })
        .flat_map(|st| words_of(&st.text))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The tables a migration's SQL names, as words (lower-cased, quotes removed): a superset
/// (every identifier), which is what [`check`] needs to ask "does this job's table appear?".
pub(crate) fn words_of(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = crate::split::tokens(sql)
        .into_iter()
        .filter_map(|t| match t.kind {
            crate::split::TokenKind::Word => Some(sql[t.start..t.end].to_lowercase()),
            crate::split::TokenKind::QuotedIdent => {
                Some(sql[t.start..t.end].trim_matches('"').to_lowercase())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

mod committed;
mod listing;

pub(crate) use committed::{dirty_reason, verdict};

pub(crate) use listing::{
    internals_refused, note_refusal, note_show_jobs_refusal, per_run, unlistable,
};

#[cfg(test)]
mod tests;

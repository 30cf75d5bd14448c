//! Listing the schema-change jobs through whichever surface this server and user allow, and
//! saying so when none does: a job we cannot see is a warning, never a failed run.
//!
//! - **`crdb_internal.jobs`** first: it has the job's descriptor ids, so the tables are exact.
//!   From v25.4 it is an "unsafe internal" behind `allow_unsafe_internals`, off by default from
//!   v26.1 (cockroachdb/cockroach#158085): reads then fail with 42501. We never set the
//!   variable (CockroachDB advises against it in production); once refused, this run goes
//!   straight to the next surface.
//! - **`[SHOW JOBS]`** next: a delegated statement, exempt from the gate ("SHOW commands ...
//!   bypass the allow_unsafe_internals setting", docs `crdb-internal.md`; the nested
//!   `SHOW JOBS WHEN COMPLETE SELECT job_id FROM [SHOW JOBS]` case in
//!   `pkg/sql/unsafesql/unsafesql_test.go`). It has no descriptor ids: the tables are read
//!   from the description, where CockroachDB writes names qualified
//!   (`ALTER TABLE db.public.users ...`); jobs naming no table of this database are left out.
//! - **Neither** (a server without them, a user without the privilege): `job.unlisted`, a
//!   warning that names why, and the run goes on as if there were no jobs.
//!
//! Visibility: a user without the `VIEWJOB` privilege (or admin) sees only its own jobs on
//! either surface; that is said once per run (`job.unlisted`) and the run goes on.
//!
//! What was learnt (a surface refused, the warning given) belongs to one run: it is kept in
//! [`Surfaces`], set for the run's future by [`per_run`]. Several runs in one process (a fleet
//! of databases) each decide for themselves: a gated `crdb_internal` on one cluster says
//! nothing about another's. Outside a run (`status`) each listing starts afresh.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Client;

use super::{Job, from_values};
use crate::error::{Error, Result};
use crate::log::events;

/// What one run learnt about the job surfaces of its server.
#[derive(Default)]
pub(crate) struct Surfaces {
    /// `crdb_internal` refused us once in this run: do not ask it again.
    internals_refused: AtomicBool,
    /// `[SHOW JOBS]` refused us once in this run (a server that lacks it, or a PostgreSQL
    /// dressed as CockroachDB): with `crdb_internal` refused too, jobs are not asked for again.
    show_jobs_refused: AtomicBool,
    /// The visibility warning was given (once per run).
    visibility_checked: AtomicBool,
}

tokio::task_local! {
    /// The surfaces of the run whose future is being polled (see [`per_run`]).
    static SURFACES: Arc<Surfaces>;
}

/// Runs `work` (one run's steps) with surfaces of its own: nothing learnt by another run, in
/// this process or not, is seen, and nothing learnt here leaks out.
/// Not an `async fn`: that would hold `work` twice (as its argument, then inside the scope).
pub(crate) fn per_run<F: Future>(work: F) -> impl Future<Output = F::Output> {
    SURFACES.scope(Arc::default(), work)
}

/// `f` on the current run's surfaces; outside a run, on fresh ones (nothing remembered).
fn with<R>(f: impl FnOnce(&Surfaces) -> R) -> R {
    let mut f = Some(f);
    match SURFACES.try_with(|s| (f.take().expect("called once"))(s)) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))(&Surfaces::default()),
    }
}

/// Whether `crdb_internal` refused us earlier in this run.
pub(crate) fn internals_refused() -> bool {
    with(|s| s.internals_refused.load(Ordering::Relaxed))
}

/// Neither surface answered earlier in this run (the warning was given then).
pub(crate) fn unlistable() -> bool {
    with(|s| {
        s.internals_refused.load(Ordering::Relaxed) && s.show_jobs_refused.load(Ordering::Relaxed)
    })
}

/// Remembers that `[SHOW JOBS]` refused us.
pub(crate) fn note_show_jobs_refusal(e: &tokio_postgres::Error) {
    if crate::sqlstate::is_surface_refused(e) {
        with(|s| s.show_jobs_refused.store(true, Ordering::Relaxed));
    }
}

/// Remembers that `crdb_internal` refused us (gated, or lacking what we read: it will not
/// change during this run).
pub(crate) fn note_refusal(e: &tokio_postgres::Error) {
    if crate::sqlstate::is_surface_refused(e) {
        with(|s| s.internals_refused.store(true, Ordering::Relaxed));
    }
}

/// The live schema-change jobs as `SHOW JOBS` lists them, in the order of [`from_values`]'
/// arguments, the tables left out, plus `current_database()` to find them in the
/// description. Plain `SHOW JOBS` abbreviates descriptions longer than 70 characters from
/// v24.1 (cockroachdb/cockroach#121272: "unless a specific job or set of jobs is shown"), so
/// the live jobs are picked by an inner `[SHOW JOBS]` and shown whole by `SHOW JOBS SELECT`.
/// Only columns `SHOW JOBS` has kept are read (`job_id`, `job_type`, `description`, `status`,
/// `created`, `fraction_completed`, `error`); the running status, whose name moved inside the
/// jobs system (cockroachdb/cockroach#141206), is left NULL.
pub(crate) fn show_jobs_sql() -> String {
    show_sql(&format!("status IN {}", super::LIVE))
}

/// The schema-change jobs `SHOW JOBS` lists that meet `filter`, as [`show_jobs_sql`] reads them.
fn show_sql(filter: &str) -> String {
    format!(
        "SELECT job_id, status, description, fraction_completed, NULL::STRING AS running_status, \
                error, current_database() \
           FROM [SHOW JOBS SELECT job_id FROM [SHOW JOBS] \
                  WHERE job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') AND {filter}] \
          ORDER BY created, job_id"
    )
}

/// Which schema-change jobs (on tables of the current database) a listing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// The live ones: every non-terminal status.
    Live,
    /// Every one created at most this many milliseconds ago (server clock), whatever its
    /// status.
    Recent(i64),
}

impl Ask {
    /// The query on `crdb_internal`, and the one on `[SHOW JOBS]`.
    fn sql(self) -> (String, String) {
        match self {
            Ask::Live => (super::find_sql(), show_jobs_sql()),
            Ask::Recent(ms) => (super::recent_sql(ms), show_sql(&super::recent(ms, ""))),
        }
    }
}

/// What a listing found.
#[derive(Debug)]
pub(crate) enum Listed {
    /// The jobs asked for, oldest first.
    Jobs(Vec<Job>),
    /// No surface answers this server and user: why (each surface's refusal).
    Unlisted(String),
}

/// The tables of database `db` a job description names: every `db.schema.table` (bare or
/// quoted parts), as bare names, sorted, without repeats.
pub(crate) fn tables_in(description: &str, db: &str) -> Vec<String> {
    use crate::split::TokenKind;
    let toks = crate::split::tokens(description);
    let name = |i: usize| -> Option<String> {
        let t = toks.get(i)?;
        let text = &description[t.start..t.end];
        match t.kind {
            TokenKind::Word => Some(text.to_lowercase()),
            TokenKind::QuotedIdent => Some(text[1..text.len() - 1].replace("\"\"", "\"")),
            _ => None,
        }
    };
    let dot = |i: usize| {
        toks.get(i)
            .is_some_and(|t| &description[t.start..t.end] == ".")
    };
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if let (Some(d), true, Some(_), true, Some(table)) =
            (name(i), dot(i + 1), name(i + 2), dot(i + 3), name(i + 4))
            && d.eq_ignore_ascii_case(db)
            && !(i > 0 && dot(i - 1))
        {
            out.push(table);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The jobs on tables of the current database that `sql` ([`show_sql`]) lists through
/// `[SHOW JOBS]`.
async fn through_show_jobs(
    client: &Client,
    sql: &str,
) -> std::result::Result<Vec<Job>, tokio_postgres::Error> {
    let rows = client.query_typed(sql, &[]).await?;
    let mut jobs = Vec::new();
    for r in &rows {
        let description: Option<String> = r.try_get(2)?;
        let db: Option<String> = r.try_get(6)?;
        let tables = tables_in(
            description.as_deref().unwrap_or(""),
            db.as_deref().unwrap_or(""),
        );
        if tables.is_empty() {
            continue;
        }
        jobs.push(from_values(
            r.try_get(0)?,
            r.try_get(1)?,
            description,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            Some(tables.into_iter().map(Some).collect()),
        ));
    }
    Ok(jobs)
}

/// The live schema-change jobs on tables of the current database ([`list`]); when none can be
/// listed, a `job.unlisted` warning (the first time) and no jobs.
pub(crate) async fn find(client: &Client) -> Result<Vec<Job>> {
    let first = !unlistable();
    match list(client, Ask::Live).await? {
        Listed::Jobs(jobs) => Ok(jobs),
        Listed::Unlisted(why) => {
            if first {
                tracing::warn!(
                    event = events::JOB_UNLISTED,
                    reason = %why,
                    "cannot list CockroachDB schema-change jobs ({why}); going on without \
                     waiting for any: a schema change still running on a table a migration \
                     alters may make that migration wait or fail"
                );
            }
            Ok(Vec::new())
        }
    }
}

/// The schema-change jobs on tables of the current database that `ask` names: from
/// `crdb_internal` unless it refused us before, else from `[SHOW JOBS]`;
/// [`Listed::Unlisted`] when neither can be read for a reason of the server's or the user's
/// ([`crate::sqlstate::is_surface_refused`]), now or earlier in this run. A lost
/// connection (or any other failure) is an error.
pub(crate) async fn list(client: &Client, ask: Ask) -> Result<Listed> {
    if unlistable() {
        return Ok(Listed::Unlisted(
            "crdb_internal.jobs and SHOW JOBS were refused earlier in this run, see job.unlisted"
                .into(),
        ));
    }
    let (internal, show) = ask.sql();
    let mut why = Vec::new();
    if !internals_refused() {
        match super::find_internal(client, &internal).await {
            Ok(jobs) => {
                warn_if_partial(client).await;
                return Ok(Listed::Jobs(jobs));
            }
            Err(e) if crate::sqlstate::is_surface_refused(&e) => {
                note_refusal(&e);
                why.push(format!("crdb_internal.jobs: {}", db_text(&e)));
            }
            Err(e) => return Err(Error::db("listing CockroachDB schema-change jobs", e)),
        }
    }
    match through_show_jobs(client, &show).await {
        Ok(jobs) => {
            warn_if_partial(client).await;
            Ok(Listed::Jobs(jobs))
        }
        Err(e) if crate::sqlstate::is_surface_refused(&e) => {
            note_show_jobs_refusal(&e);
            why.push(format!("SHOW JOBS: {}", db_text(&e)));
            Ok(Listed::Unlisted(why.join("; ")))
        }
        Err(e) => Err(Error::db(
            "listing CockroachDB schema-change jobs (SHOW JOBS)",
            e,
        )),
    }
}

/// The server's words and SQLSTATE.
fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Whether the current user sees every job: an admin does; anyone else sees only its own
/// jobs unless granted `VIEWJOB` (`pkg/sql/crdb_internal.go`, the jobs table's visibility
/// check), which we do not try to read. `None`: could not tell.
pub(crate) const ADMIN_SQL: &str =
    "SELECT current_user, pg_has_role(current_user, 'admin', 'MEMBER')";

/// Once per run: warns (`job.unlisted`) when the user is not an admin, so that jobs of
/// other users may be invisible to it. Best effort: a failed check says nothing.
pub(crate) async fn warn_if_partial(client: &Client) {
    if with(|s| s.visibility_checked.swap(true, Ordering::Relaxed)) {
        return;
    }
    let Ok(Some(row)) = client.query_opt(ADMIN_SQL, &[]).await else {
        return;
    };
    let (Ok(user), Ok(Some(false))) = (
        row.try_get::<_, String>(0),
        row.try_get::<_, Option<bool>>(1),
    ) else {
        return;
    };
    tracing::warn!(
        event = events::JOB_UNLISTED,
        user = %user,
        reason = "not an admin",
        "user {user} is not an admin: unless granted VIEWJOB (`GRANT SYSTEM VIEWJOB TO {user}`) \
         CockroachDB shows it only its own jobs, so schema changes started by other users are \
         not waited for"
    );
}

//! CockroachDB's side of progress: our user's live schema-change jobs, read into [`Sample`],
//! and tied to our statement by who and when (see the parent module's docs).

use std::time::Duration;

use tokio_postgres::Client;

use super::Sample;

/// The CockroachDB progress query: schema-change jobs of `current_user` still pending or
/// running, newest first, with their age in milliseconds by the server's clock.
pub(crate) fn cockroach_sql() -> &'static str {
    "SELECT job_id, job_type, status, running_status, fraction_completed, \
            ((EXTRACT(EPOCH FROM now()) - EXTRACT(EPOCH FROM created::TIMESTAMPTZ)) * 1000)::INT8 AS age_ms \
       FROM crdb_internal.jobs \
      WHERE job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') \
        AND status IN ('pending', 'running', 'retry-running') \
        AND user_name = current_user \
      ORDER BY created DESC, job_id DESC"
}

/// [`cockroach_sql`] over `[SHOW JOBS]`, the surface left when `crdb_internal` is gated
/// (`allow_unsafe_internals` off, the default from v26.1; see `jobs/listing.rs`), without the
/// running status (left NULL there too).
pub(crate) fn show_jobs_sql() -> String {
    cockroach_sql()
        .replace("FROM crdb_internal.jobs", "FROM [SHOW JOBS]")
        .replace(" running_status,", " NULL::STRING AS running_status,")
}

/// How much later than our flight's start a job may be created and still count as ours.
const JOB_SLACK_MS: i64 = 1_000;

impl Sample {
    /// A CockroachDB job row, from its plain values.
    pub(crate) fn from_job(
        job_id: i64,
        job_type: &str,
        status: &str,
        running_status: Option<&str>,
        fraction: Option<f64>,
        age_ms: Option<i64>,
    ) -> Sample {
        let phase = running_status
            .filter(|s| !s.is_empty())
            .unwrap_or(status)
            .to_string();
        Sample {
            command: job_type.to_string(),
            phase,
            fraction: fraction.filter(|f| f.is_finite()),
            job_id: Some(job_id),
            age_ms,
            ..Sample::default()
        }
    }
}

/// Keeps the CockroachDB jobs created since our flight started `elapsed` ago (with slack).
pub(crate) fn ours(samples: Vec<Sample>, elapsed: Duration) -> Vec<Sample> {
    let window = i64::try_from(elapsed.as_millis())
        .unwrap_or(i64::MAX)
        .saturating_add(JOB_SLACK_MS);
    samples
        .into_iter()
        .filter(|p| p.job_id.is_none() || p.age_ms.is_some_and(|a| a <= window))
        .collect()
}

/// Our user's running schema-change jobs, read on `client` (a side connection): from
/// `crdb_internal` unless it refused us before in this run, else from `[SHOW JOBS]`;
/// nothing (elapsed time only, no query) once both have refused.
pub(super) async fn sample(client: &Client) -> Result<Vec<Sample>, tokio_postgres::Error> {
    if crate::jobs::unlistable() {
        return Ok(Vec::new());
    }
    let internal = if crate::jobs::internals_refused() {
        None
    } else {
        match client.query_typed(cockroach_sql(), &[]).await {
            Ok(rows) => Some(rows),
            Err(e) if crate::sqlstate::is_surface_refused(&e) => {
                crate::jobs::note_refusal(&e);
                None
            }
            Err(e) => return Err(e),
        }
    };
    let rows = match internal {
        Some(rows) => rows,
        None => match client.query_typed(&show_jobs_sql(), &[]).await {
            Ok(rows) => rows,
            Err(e) => {
                crate::jobs::note_show_jobs_refusal(&e);
                return Err(e);
            }
        },
    };
    rows.iter()
        .map(|r| {
            let job_type: Option<String> = r.try_get(1)?;
            let status: Option<String> = r.try_get(2)?;
            let running: Option<String> = r.try_get(3)?;
            Ok(Sample::from_job(
                r.try_get(0)?,
                job_type.as_deref().unwrap_or(""),
                status.as_deref().unwrap_or(""),
                running.as_deref(),
                r.try_get(4)?,
                r.try_get(5)?,
            ))
        })
        .collect()
}

//! The schema-change jobs of one step whose transaction committed while its COMMIT's reply was
//! lost with the connection (CockroachDB only). COMMIT waits for the transaction's jobs and
//! answers with their outcome; without that answer the ledger's `applied` says only that the
//! transaction committed. So the jobs created since the step began on the tables its SQL names
//! are listed (whatever their status: one may have failed while we reconnected), waited for
//! while they move, up to `MIGRATE_JOB_WAIT_TIMEOUT`, and judged: all `succeeded` (or none
//! found) is [`Verdict::Done`]; anything else, or jobs that cannot be listed, is for the caller
//! to turn into a dirty mark.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::listing::{Ask, Listed, list};
use super::{Job, Motion, moving, next_poll, pause, report};
use crate::error::Result;
use crate::log::events;

/// How much earlier than the step's start, by our clock, a job may be created by the server's
/// and still be looked at: covers the servers' clock offset (CockroachDB's default maximum is
/// 500 ms). A job of someone else's on the same table in that margin is judged with ours.
const SLACK: Duration = Duration::from_secs(5);

/// What became of a committed step's schema-change jobs.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Every job on the step's tables succeeded, or there was none.
    Done,
    /// A job that did not succeed: failed, canceled, stopped (paused, revert-failed), or
    /// still moving (`moving`) when the wait ran out after `waited`.
    NotDone {
        job: Job,
        moving: bool,
        waited: Duration,
    },
    /// No surface lists jobs here: why.
    Unlisted(String),
}

/// Lists the schema-change jobs on `tables` (the words of the step's SQL) created since the
/// step started (`started`, with [`SLACK`]), waits while any moves (polling with backoff,
/// `job.waiting`, up to `timeout`), and says what became of them.
pub(crate) async fn verdict(
    client: &Client,
    tables: &[String],
    started: Instant,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Verdict> {
    let waiting = Instant::now();
    let mut delays = crate::backoff::job_poll();
    let mut polls = 0u32;
    loop {
        let ms = i64::try_from((started.elapsed() + SLACK).as_millis()).unwrap_or(i64::MAX);
        let jobs: Vec<Job> = match list(client, Ask::Recent(ms)).await? {
            Listed::Unlisted(why) => return Ok(Verdict::Unlisted(why)),
            Listed::Jobs(jobs) => jobs.into_iter().filter(|j| j.touches(tables)).collect(),
        };
        if polls == 0 {
            report(&jobs);
        }
        polls += 1;
        let waited = waiting.elapsed();
        let moving = moving(&jobs);
        if let Some(first) = moving.first() {
            match next_poll(delays.next(), waited, timeout) {
                Some(delay) => {
                    pause(&moving, waited, delay, cancel).await?;
                    continue;
                }
                None => {
                    return Ok(Verdict::NotDone {
                        job: (*first).clone(),
                        moving: true,
                        waited,
                    });
                }
            }
        }
        if polls > 1 {
            tracing::info!(
                event = events::JOB_DONE,
                waited_ms = waited.as_millis() as u64,
                "schema-change jobs no longer running"
            );
        }
        return Ok(judge(jobs, waited));
    }
}

/// The verdict on jobs none of which moves any more.
pub(crate) fn judge(jobs: Vec<Job>, waited: Duration) -> Verdict {
    match jobs.into_iter().find(|j| j.status != "succeeded") {
        Some(job) => Verdict::NotDone {
            moving: matches!(job.motion(), Motion::Forward | Motion::Back),
            job,
            waited,
        },
        None => Verdict::Done,
    }
}

/// Why the step's row is marked dirty, for `verdict` (`None`: it is not). `what`: what the
/// ledger says the step did ("applied", "rolled back"); `ddl`: whether its SQL can start a
/// schema-change job at all (without, jobs that cannot be listed leave it as it is).
pub(crate) fn dirty_reason(verdict: &Verdict, what: &str, ddl: bool) -> Option<String> {
    let lead = format!(
        "the connection dropped while COMMIT waited for the schema-change jobs; the transaction \
         committed (the ledger says {what})"
    );
    match verdict {
        Verdict::Done => None,
        Verdict::Unlisted(_) if !ddl => None,
        Verdict::Unlisted(why) => Some(format!(
            "{lead}, but whether its schema change took effect could not be checked: the \
             schema-change jobs cannot be listed ({why})"
        )),
        Verdict::NotDone {
            job,
            moving,
            waited,
        } => {
            let state = if *moving {
                format!(
                    "was still {} after waiting {} ms (MIGRATE_JOB_WAIT_TIMEOUT), so its \
                     outcome is unknown",
                    job.status,
                    waited.as_millis()
                )
            } else {
                format!("ended {}", job.status)
            };
            let error = job
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            Some(format!(
                "{lead}, but schema-change job {} on {} {state}{error}: the schema change may \
                 not have taken effect; inspect it with `SHOW JOB {}`",
                job.id,
                job.tables.join(", "),
                job.id
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, status: &str) -> Job {
        super::super::from_values(
            id,
            Some(status.into()),
            Some("ALTER TABLE db.public.users ADD COLUMN x INT8".into()),
            None,
            None,
            Some("boom".into()).filter(|_| status == "failed"),
            Some(vec![Some("users".into())]),
        )
    }

    #[test]
    fn only_jobs_that_all_succeeded_leave_the_row_applied() {
        let none = Duration::ZERO;
        assert_eq!(judge(vec![], none), Verdict::Done);
        assert_eq!(judge(vec![job(1, "succeeded")], none), Verdict::Done);
        for status in ["failed", "canceled", "paused", "revert-failed", "reverting"] {
            let v = judge(vec![job(1, "succeeded"), job(2, status)], none);
            let Verdict::NotDone { job, moving, .. } = &v else {
                panic!("{status}: {v:?}");
            };
            assert_eq!((job.id, *moving), (2, status == "reverting"), "{status}");
            let why = dirty_reason(&v, "applied", true).expect("dirty");
            assert!(why.contains("SHOW JOB 2") && why.contains(status), "{why}");
        }
        let failed = dirty_reason(&judge(vec![job(3, "failed")], none), "applied", false);
        assert!(failed.is_some_and(|w| w.contains("(boom)")));
    }

    #[test]
    fn recent_jobs_are_asked_for_whatever_their_status() {
        let sql = super::super::recent_sql(7_500);
        assert!(
            sql.contains("j.created::TIMESTAMPTZ >= now() - INTERVAL '1 millisecond' * 7500"),
            "{sql}"
        );
        assert!(!sql.contains("j.status IN"), "{sql}");
        assert!(
            sql.contains("'SCHEMA CHANGE', 'NEW SCHEMA CHANGE'"),
            "{sql}"
        );
    }

    #[test]
    fn jobs_that_cannot_be_listed_mark_a_step_with_ddl_dirty() {
        let v = Verdict::Unlisted("SHOW JOBS: no".into());
        let why = dirty_reason(&v, "applied", true).expect("dirty");
        assert!(why.contains("could not be checked") && why.contains("SHOW JOBS: no"));
        assert_eq!(dirty_reason(&v, "applied", false), None);
        assert_eq!(dirty_reason(&Verdict::Done, "applied", true), None);
    }
}

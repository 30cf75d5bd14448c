//! The transactional steps of a chain (`chain`, sent as one flight by `flight`): a failure's
//! meaning, and the retries. The whole chain is one pipelined flight; a failure anywhere leaves
//! its transaction aborted (the `COMMIT` at the end of its part rolls it back) and stops the
//! steps after it (their guards). The steps before it committed. On 40001 the chain is sent
//! again from the failed step; XXA00 or 40003 at COMMIT (and 57014 on CockroachDB) leaves the
//! outcome unknown, so the migration is marked dirty instead. A lock timeout (55P03) rolls the
//! step back and sends the chain again from it after `backoff::lock_retry`, up to
//! `MIGRATE_LOCK_RETRIES` times (a budget apart from the 40001 replays); when they run out, the
//! error names the lock's holders. Both budgets are per migration, as with one step a flight.

use crate::backoff;
use crate::error::{Error, Result};
use crate::log::events;
use crate::plan::Step;
use crate::report::Progress;
use crate::sqlstate;

use super::flight::{Part, Reply};
use super::{Applier, blockers, sql_failed, statements};

/// How one attempt at a transactional step ended, when it did not succeed.
enum Fail {
    /// SQLSTATE 40001: rolled back, replay.
    Retry,
    /// SQLSTATE 55P03 (lock timeout) at this part: rolled back, try again after a pause.
    LockTimeout(tokio_postgres::Error, Part),
    /// A stop was asked for and this step's guard refused to start it: the steps before it
    /// committed, nothing after it ran.
    Stopped,
    /// Anything else: stop.
    Stop(Error),
}

/// The retries left to the step a chain resumes at: 40001 replays (renewed after each lock
/// timeout, as they were per attempt) and lock-timeout retries.
struct Budget {
    replays: Box<dyn Iterator<Item = std::time::Duration> + Send>,
    replay_attempt: u32,
    locks: Box<dyn Iterator<Item = std::time::Duration> + Send>,
    lock_attempt: u32,
}

impl Budget {
    fn new(lock_retries: u32) -> Budget {
        Budget {
            replays: Box::new(backoff::replay()),
            replay_attempt: 1,
            locks: Box::new(backoff::lock_retry(lock_retries)),
            lock_attempt: 1,
        }
    }
}

impl Applier<'_> {
    /// Runs the chain `steps` (the first at `base` in the plan; its `migration.started` is
    /// logged), sending it again from a step that must be retried; each step is reported as it
    /// commits. Returns how many steps committed: all, or fewer when a stop was asked for. On
    /// error, the failed step is the one [`Applier::in_flight`] names.
    pub(super) async fn step_chain(
        &self,
        steps: &[Step<'_>],
        base: usize,
        progress: &Progress,
    ) -> Result<usize> {
        let mut from = 0;
        let mut budget = Budget::new(self.settings.lock_retries);
        loop {
            let Err((at, fail)) = self.attempt(&steps[from..], base + from, progress).await else {
                return Ok(steps.len());
            };
            if at > 0 {
                // The steps before it committed: the budgets are the failed step's own.
                from += at;
                budget = Budget::new(self.settings.lock_retries);
            }
            let step = &steps[from];
            match fail {
                Fail::Stopped => return Ok(from),
                Fail::Stop(e) => return Err(e),
                Fail::Retry => self.replay_later(step, &mut budget).await?,
                Fail::LockTimeout(e, part) => {
                    self.lock_retry_later(step, &mut budget, e, part).await?
                }
            }
        }
    }

    /// After a 40001: waits to replay `step`, or says the replays are spent (exit 13).
    async fn replay_later(&self, step: &Step<'_>, budget: &mut Budget) -> Result<()> {
        let m = &*step.migration;
        let Some(delay) = budget.replays.next() else {
            return Err(Error::RetriesExhausted {
                version: m.version,
                attempts: budget.replay_attempt,
            });
        };
        retry_event(
            m,
            budget.replay_attempt,
            ("serialization failure", "40001"),
            delay,
            "serialization failure; replaying the migration's transaction",
        );
        tokio::time::sleep(delay).await;
        budget.replay_attempt += 1;
        Ok(())
    }

    /// After a lock timeout at `part`: waits to try `step` again (with a fresh 40001 budget),
    /// or says the retries are spent, naming the lock's holders (exit 30).
    async fn lock_retry_later(
        &self,
        step: &Step<'_>,
        budget: &mut Budget,
        e: tokio_postgres::Error,
        part: Part,
    ) -> Result<()> {
        let m = &*step.migration;
        let Some(delay) = budget.locks.next() else {
            return Err(self
                .lock_timeout_exhausted(step, e, part, budget.lock_attempt)
                .await);
        };
        retry_event(
            m,
            budget.lock_attempt,
            ("lock timeout", "55P03"),
            delay,
            "lock timeout; rolled back, trying the migration again",
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.cancel.cancelled() => return Err(Error::Terminated),
        }
        self.check_go_on(|| "the heartbeat found the lease expired or taken".into())?;
        budget.lock_attempt += 1;
        budget.replays = Box::new(backoff::replay());
        budget.replay_attempt = 1;
        Ok(())
    }

    /// The error once every lock-timeout retry is spent (exit 30): the server's words, how
    /// many attempts, and who held the lock, looked up right away on this connection.
    async fn lock_timeout_exhausted(
        &self,
        step: &Step<'_>,
        e: tokio_postgres::Error,
        part: Part,
        attempts: u32,
    ) -> Error {
        let m = &*step.migration;
        let sqls = statements(step);
        let relations = match part {
            Part::Statement(i) => crate::jobs::words_of(&sqls[i].text),
            _ => crate::jobs::words_of_steps(&crate::plan::Plan {
                current: 0,
                target: 0,
                steps: vec![step.clone()],
                phase: None,
                held_back: Vec::new(),
            }),
        };
        let held = blockers::find(self.client, self.settings.flavour, relations).await;
        let statement = match part {
            Part::Statement(i) => Some((step, i)),
            _ => None,
        };
        let mut err = sql_failed(m, e, statement, true);
        if let Error::MigrationFailed(f) = &mut err {
            f.message = format!(
                "{} (on each of {attempts} attempt(s)); {}",
                f.message,
                blockers::describe(&held)
            );
            if f.hint.is_none() {
                f.hint = Some(
                    "end or wait out the session holding the lock, or raise -- @LOCK_TIMEOUT / MIGRATE_LOCK_RETRIES"
                        .into(),
                );
            }
        }
        err
    }

    async fn rollback(&self) {
        // Ends a transaction a failure left open; if the connection is gone the server rolled
        // back anyway, and after the flight's own COMMIT this only draws a warning.
        let _ = self.client.batch_execute("ROLLBACK").await;
    }

    /// Sends the chain `steps` at once and reads the replies in order. On failure: the failed
    /// step (in `steps`; the ones before it committed) and what its failure means.
    async fn attempt(
        &self,
        steps: &[Step<'_>],
        base: usize,
        progress: &Progress,
    ) -> std::result::Result<(), (usize, Fail)> {
        let (parts, replies) = self.send_chain(steps, base, progress).await;
        let Some((j, part, e)) = first_failure(&parts, replies) else {
            return Ok(());
        };
        self.rollback().await;
        Err((j, self.failure(&steps[j], part, e).await))
    }

    /// What the flight's first failure `e`, at `part`, means (the transaction already rolled
    /// back): replay on 40001, try again after a lock timeout, else stop — with the migration
    /// marked dirty when the COMMIT's outcome is unknown.
    async fn failure(&self, step: &Step<'_>, part: Part, e: tokio_postgres::Error) -> Fail {
        let m = &*step.migration;
        if sqlstate::is_retry(&e) {
            return Fail::Retry;
        }
        if part == Part::GuardedBegin
            && self.cancel.is_cancelled()
            && !sqlstate::is_connection_lost(&e)
        {
            return Fail::Stopped;
        }
        if sqlstate::is_lock_timeout(&e) && part != Part::Commit {
            return Fail::LockTimeout(e, part);
        }
        Fail::Stop(match part {
            Part::FenceCheck if !sqlstate::is_connection_lost(&e) => {
                self.lease.lost_error(format!(
                    "the fence check before recording version {} failed",
                    m.version
                ))
            }
            Part::FenceCheck | Part::LedgerWrite => {
                Error::db("recording the migration in the ledger", e)
            }
            Part::Commit if sqlstate::commit_outcome_unknown(&e, self.cockroach()) => {
                self.dirty(m, 0, commit_unknown(&e)).await
            }
            Part::Statement(i) => {
                super::failure::schema_locked_hint(sql_failed(m, e, Some((step, i)), true))
            }
            Part::Begin | Part::GuardedBegin | Part::Limit(_) | Part::Unlimit | Part::Commit => {
                sql_failed(m, e, None, true)
            }
        })
    }
}

/// The first failed reply of a flight, with its part and step: the cause. The ones after it
/// are its echo (25P02, "current transaction is aborted", and the guards of the steps after
/// it), and the COMMIT after a failure is a rollback.
fn first_failure(
    parts: &[(usize, Part)],
    replies: Vec<Reply>,
) -> Option<(usize, Part, tokio_postgres::Error)> {
    parts
        .iter()
        .zip(replies)
        .find_map(|((j, part), r)| r.err().map(|e| (*j, *part, e)))
}

/// Why a COMMIT's outcome is unknown, for the dirty mark: its SQLSTATE and the server's words.
fn commit_unknown(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("SQLSTATE {} at COMMIT: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
/// The `migration.retry` event: `m` will be tried again (`attempt`) after `delay`, because
/// of (`reason`, `sqlstate`).
fn retry_event(
    m: &crate::source::Migration,
    attempt: u32,
    (reason, sqlstate): (&str, &str),
    delay: std::time::Duration,
    message: &str,
) {
    tracing::warn!(
        event = events::MIGRATION_RETRY,
        version = m.version,
        description = %m.description,
        checksum = %m.checksum,
        attempt,
        reason,
        sqlstate,
        delay_ms = delay.as_millis() as u64,
        "{message}"
    );
}

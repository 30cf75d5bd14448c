//! One transactional step, sent as one pipelined flight: `BEGIN ISOLATION LEVEL SERIALIZABLE`,
//! the migration's `SET LOCAL statement_timeout` / `lock_timeout` (its directives, else the
//! defaults), each statement of the migration as its own query, the fence check (which raises
//! when the lease is not ours), the ledger write, on CockroachDB `SET LOCAL statement_timeout = 0`,
//! and `COMMIT` — one round trip and one commit per migration. A failure anywhere
//! leaves the transaction aborted, so the `COMMIT` at the end of the flight rolls it back. The
//! whole flight is replayed on 40001; XXA00 or 40003 at COMMIT (and 57014 on CockroachDB)
//! leaves the outcome unknown, so the migration is marked dirty instead. A lock timeout (55P03) rolls the flight back and
//! tries again with `backoff::lock_retry` up to `MIGRATE_LOCK_RETRIES` times (a budget apart
//! from the 40001 replays); when they run out, the error names the lock's holders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backoff;
use crate::error::{Error, Result};
use crate::log::events;
use crate::plan::Direction;
use crate::plan::Step;
use crate::progress;
use crate::sqlstate;
use crate::store::fence::{Checked, FenceCheck, FencedWrite};

use super::replay::{Replayable, replay};
use super::{Applier, blockers, sql_failed, statements, timeouts};
use crate::pipeline;

/// How one attempt at a transactional step ended, when it did not succeed.
enum Fail {
    /// SQLSTATE 40001: rolled back, replay.
    Retry,
    /// SQLSTATE 55P03 (lock timeout) at this part: rolled back, try again after a pause.
    LockTimeout(tokio_postgres::Error, Part),
    /// Anything else: stop.
    Stop(Error),
}

impl Replayable for Fail {
    fn is_retry(&self) -> bool {
        matches!(self, Fail::Retry)
    }
}

/// What each reply of the flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Begin,
    /// The `i`-th `SET LOCAL` of the migration's limits.
    Limit(usize),
    Statement(usize),
    FenceCheck,
    LedgerWrite,
    /// CockroachDB only: `SET LOCAL statement_timeout = 0`, so the wait for the schema-change
    /// jobs at COMMIT is not cut short (see [`UNLIMIT`]).
    Unlimit,
    Commit,
}

/// How a migration's transaction begins. SERIALIZABLE is asked for, not assumed: under a role,
/// database or cluster default of READ COMMITTED (or REPEATABLE READ), CockroachDB upgrades a
/// transaction to SERIALIZABLE only when its *first* statement is DDL and refuses DDL anywhere
/// later (`maybeAdjustTxnForDDL`, `pkg/sql/conn_executor_ddl.go`), and the `SET LOCAL`s come
/// first. It also keeps the fence check and the ledger write serializable. One statement, so no
/// round trip is added; PostgreSQL takes the same words.
pub(super) const BEGIN: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// Sent right before COMMIT on CockroachDB. There a schema change runs as a job after the
/// transaction commits and the session waits for it inside COMMIT; `statement_timeout` bounds
/// that wait (cockroachdb/cockroach#128474, `TestStatementTimeoutForSchemaChangeCommit` in
/// `pkg/sql/run_control_test.go`), and a wait cut short answers for a job still running: a
/// COMMIT that says success (or 57014) before the schema change is done. With the limit lifted
/// for the COMMIT alone, its answer is the jobs' outcome: success once they succeeded, XXA00
/// when one failed (the migration is then marked dirty). The migration's own statements keep
/// their limit; a role's or session's `statement_timeout` is lifted for the COMMIT too.
pub(super) const UNLIMIT: &str = "SET LOCAL statement_timeout = 0";

/// The parts of a flight for `limits` `SET LOCAL`s and `n` statements, in the order they are
/// sent; `unlimit`: lift the statement timeout before COMMIT (CockroachDB).
fn flight(limits: usize, n: usize, unlimit: bool) -> Vec<Part> {
    let mut parts = Vec::with_capacity(limits + n + 5);
    parts.push(Part::Begin);
    parts.extend((0..limits).map(Part::Limit));
    parts.extend((0..n).map(Part::Statement));
    parts.extend([Part::FenceCheck, Part::LedgerWrite]);
    if unlimit {
        parts.push(Part::Unlimit);
    }
    parts.push(Part::Commit);
    parts
}

/// The 1-based statement in flight once `done`'s reply is in, for a flight of `n` statements
/// (replies come in order, so the next part is the one the server works on); 0 once the
/// statements are done (fence check, ledger write, COMMIT — where CockroachDB runs the
/// schema-change jobs of the transaction).
fn in_flight_after(done: Part, n: usize) -> usize {
    match done {
        Part::Begin | Part::Limit(_) if n > 0 => 1,
        Part::Statement(i) if i + 1 < n => i + 2,
        _ => 0,
    }
}

impl Applier<'_> {
    pub(super) async fn step_transaction(&self, step: &Step<'_>) -> Result<()> {
        let m = &*step.migration;
        let mut lock_delays = backoff::lock_retry(self.settings.lock_retries);
        let mut lock_attempt = 1u32;
        loop {
            let outcome = replay(m, "the migration's transaction", || self.attempt(step)).await;
            let (e, part) = match outcome {
                Ok(()) => return Ok(()),
                Err((Fail::Stop(e), _)) => return Err(e),
                Err((Fail::Retry, attempts)) => {
                    return Err(Error::RetriesExhausted {
                        version: m.version,
                        attempts,
                    });
                }
                Err((Fail::LockTimeout(e, part), _)) => (e, part),
            };
            let Some(delay) = lock_delays.next() else {
                return Err(self
                    .lock_timeout_exhausted(step, e, part, lock_attempt)
                    .await);
            };
            tracing::warn!(
                event = events::MIGRATION_RETRY,
                version = m.version,
                description = %m.description,
                checksum = %m.checksum,
                attempt = lock_attempt,
                reason = "lock timeout",
                sqlstate = "55P03",
                delay_ms = delay.as_millis() as u64,
                "lock timeout; rolled back, trying the migration again"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return Err(Error::Terminated),
            }
            self.check_go_on(|| "the heartbeat found the lease expired or taken".into())?;
            lock_attempt += 1;
        }
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

    /// Sends the whole step at once and reads the replies in order.
    async fn attempt(&self, step: &Step<'_>) -> std::result::Result<(), Fail> {
        let (parts, replies) = self.send_flight(step).await;
        // The first failure is the cause; the ones after it are its echo (25P02, "current
        // transaction is aborted"), and the COMMIT after a failure is a rollback.
        let failed = parts
            .iter()
            .zip(replies)
            .find_map(|(part, r)| r.err().map(|e| (*part, e)));
        let Some((part, e)) = failed else {
            return Ok(());
        };
        self.rollback().await;
        Err(self.failure(step, part, e).await)
    }

    /// Sends every part of the step's flight at once, watched for `migration.progress`; the
    /// parts and the server's reply to each, in order.
    async fn send_flight(&self, step: &Step<'_>) -> (Vec<Part>, Vec<Reply>) {
        let m = &*step.migration;
        let sqls = statements(step);
        let f = &self.lease.fence;
        let check = FenceCheck { fence: f };
        let check_params = check.params();
        let finish = match step.direction {
            Direction::Up => Checked::Up {
                migration: m,
                fence: f,
            },
            Direction::Down => Checked::Down {
                version: &m.version,
            },
        };
        let finish_params = finish.params();
        let finish_statement = match step.direction {
            Direction::Up => &self.checked_up,
            Direction::Down => &self.checked_down,
        };
        let limit_sqls = timeouts::set_local(&timeouts::limits(m, &self.settings));
        let limit_sqls = &limit_sqls;
        let c = self.client;
        let (check_params, finish_params) = (&check_params, &finish_params);
        let parts = flight(limit_sqls.len(), sqls.len(), self.cockroach());
        let n = sqls.len();
        let in_flight = Arc::new(AtomicUsize::new(in_flight_after(Part::Begin, n)));
        let now = &in_flight;
        let flight = pipeline::in_order(
            parts
                .iter()
                .map(|part| async move {
                    let reply = match *part {
                        Part::Begin => c.batch_execute(BEGIN).await.map(|()| 0),
                        Part::Limit(i) => c.batch_execute(&limit_sqls[i]).await.map(|()| 0),
                        Part::Statement(i) => c.batch_execute(&sqls[i].text).await.map(|()| 0),
                        Part::FenceCheck => c.execute(&self.fence_check, check_params).await,
                        Part::LedgerWrite => c.execute(finish_statement, finish_params).await,
                        Part::Unlimit => c.batch_execute(UNLIMIT).await.map(|()| 0),
                        Part::Commit => c.batch_execute("COMMIT").await.map(|()| 0),
                    };
                    now.store(in_flight_after(*part, n), Ordering::SeqCst);
                    reply
                })
                .collect(),
        );
        let replies =
            progress::watched(self.watch.as_ref(), m.version, in_flight.clone(), flight).await;
        (parts, replies)
    }

    /// What the flight's first failure `e`, at `part`, means (the transaction already rolled
    /// back): replay on 40001, try again after a lock timeout, else stop — with the migration
    /// marked dirty when the COMMIT's outcome is unknown.
    async fn failure(&self, step: &Step<'_>, part: Part, e: tokio_postgres::Error) -> Fail {
        let m = &*step.migration;
        if sqlstate::is_retry(&e) {
            return Fail::Retry;
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
            Part::Begin | Part::Limit(_) | Part::Unlimit | Part::Commit => {
                sql_failed(m, e, None, true)
            }
        })
    }
}

/// The server's reply to one part of a flight (rows affected; 0 for a simple query).
type Reply = std::result::Result<u64, tokio_postgres::Error>;

/// Why a COMMIT's outcome is unknown, for the dirty mark: its SQLSTATE and the server's words.
fn commit_unknown(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("SQLSTATE {} at COMMIT: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_in_flight_follows_the_replies() {
        assert_eq!(in_flight_after(Part::Begin, 3), 1);
        assert_eq!(in_flight_after(Part::Statement(0), 3), 2);
        assert_eq!(in_flight_after(Part::Statement(1), 3), 3);
        assert_eq!(in_flight_after(Part::Statement(2), 3), 0);
        assert_eq!(in_flight_after(Part::Begin, 0), 0);
        assert_eq!(in_flight_after(Part::Limit(1), 3), 1);
        assert_eq!(in_flight_after(Part::Limit(0), 0), 0);
        assert_eq!(in_flight_after(Part::FenceCheck, 3), 0);
        assert_eq!(in_flight_after(Part::Commit, 3), 0);
    }

    #[test]
    fn a_flight_is_begin_statements_fence_write_commit() {
        assert_eq!(
            flight(0, 2, false),
            vec![
                Part::Begin,
                Part::Statement(0),
                Part::Statement(1),
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Commit
            ]
        );
        // A down-only migration's no-op forward still records its row in one flight.
        assert_eq!(
            flight(0, 0, false),
            vec![
                Part::Begin,
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Commit
            ]
        );
    }

    #[test]
    fn on_cockroachdb_the_timeout_is_lifted_right_before_commit() {
        assert_eq!(
            flight(1, 1, true),
            vec![
                Part::Begin,
                Part::Limit(0),
                Part::Statement(0),
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Unlimit,
                Part::Commit
            ]
        );
        assert_eq!(UNLIMIT, "SET LOCAL statement_timeout = 0");
        assert_eq!(BEGIN, "BEGIN ISOLATION LEVEL SERIALIZABLE");
    }

    #[test]
    fn the_limits_go_right_after_begin_in_the_same_flight() {
        assert_eq!(
            flight(2, 1, false),
            vec![
                Part::Begin,
                Part::Limit(0),
                Part::Limit(1),
                Part::Statement(0),
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Commit
            ]
        );
    }
}

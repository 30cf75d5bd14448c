//! One transactional step, sent as one pipelined flight: `BEGIN`, each statement of the
//! migration as its own query, the fence check (which raises when the lease is not ours), the
//! ledger write and `COMMIT` — one round trip and one commit per migration. A failure anywhere
//! leaves the transaction aborted, so the `COMMIT` at the end of the flight rolls it back. The
//! whole flight is replayed on 40001; XXA00 or 40003 at COMMIT leaves the outcome unknown, so
//! the migration is marked dirty instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::plan::Direction;
use crate::plan::Step;
use crate::progress;
use crate::sqlstate;
use crate::store::fence::{Checked, FenceCheck, FencedWrite};

use super::replay::{Replayable, replay};
use super::{Applier, sql_failed, statements};
use crate::pipeline;

/// How one attempt at a transactional step ended, when it did not succeed.
enum Fail {
    /// SQLSTATE 40001: rolled back, replay.
    Retry,
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
    Statement(usize),
    FenceCheck,
    LedgerWrite,
    Commit,
}

/// The parts of a flight for `n` statements, in the order they are sent.
fn flight(n: usize) -> Vec<Part> {
    let mut parts = Vec::with_capacity(n + 4);
    parts.push(Part::Begin);
    parts.extend((0..n).map(Part::Statement));
    parts.extend([Part::FenceCheck, Part::LedgerWrite, Part::Commit]);
    parts
}

/// The 1-based statement in flight once `done`'s reply is in, for a flight of `n` statements
/// (replies come in order, so the next part is the one the server works on); 0 once the
/// statements are done (fence check, ledger write, COMMIT — where CockroachDB runs the
/// schema-change jobs of the transaction).
fn in_flight_after(done: Part, n: usize) -> usize {
    match done {
        Part::Begin if n > 0 => 1,
        Part::Statement(i) if i + 1 < n => i + 2,
        _ => 0,
    }
}

impl Applier<'_> {
    pub(super) async fn step_transaction(&self, step: &Step<'_>) -> Result<()> {
        let m = step.migration;
        replay(m, "the migration's transaction", || self.attempt(step))
            .await
            .map_err(|(fail, attempts)| match fail {
                Fail::Stop(e) => e,
                Fail::Retry => Error::RetriesExhausted {
                    version: m.version,
                    attempts,
                },
            })
    }

    async fn rollback(&self) {
        // Ends a transaction a failure left open; if the connection is gone the server rolled
        // back anyway, and after the flight's own COMMIT this only draws a warning.
        let _ = self.client.batch_execute("ROLLBACK").await;
    }

    /// Sends the whole step at once and reads the replies in order.
    async fn attempt(&self, step: &Step<'_>) -> std::result::Result<(), Fail> {
        let m = step.migration;
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
        let c = self.client;
        let (check_params, finish_params) = (&check_params, &finish_params);
        let parts = flight(sqls.len());
        let n = sqls.len();
        let in_flight = Arc::new(AtomicUsize::new(in_flight_after(Part::Begin, n)));
        let now = &in_flight;
        let flight = pipeline::in_order(
            parts
                .iter()
                .map(|part| async move {
                    let reply = match *part {
                        Part::Begin => c.batch_execute("BEGIN").await.map(|()| 0),
                        Part::Statement(i) => c.batch_execute(&sqls[i].text).await.map(|()| 0),
                        Part::FenceCheck => c.execute(&self.fence_check, check_params).await,
                        Part::LedgerWrite => c.execute(finish_statement, finish_params).await,
                        Part::Commit => c.batch_execute("COMMIT").await.map(|()| 0),
                    };
                    now.store(in_flight_after(*part, n), Ordering::SeqCst);
                    reply
                })
                .collect(),
        );
        let replies =
            progress::watched(self.watch.as_ref(), m.version, in_flight.clone(), flight).await;
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
        if sqlstate::is_retry(&e) {
            return Err(Fail::Retry);
        }
        Err(Fail::Stop(match part {
            Part::FenceCheck if !sqlstate::is_connection_lost(&e) => {
                self.lease.lost_error(format!(
                    "the fence check before recording version {} failed",
                    m.version
                ))
            }
            Part::FenceCheck | Part::LedgerWrite => {
                Error::db("recording the migration in the ledger", e)
            }
            Part::Commit if sqlstate::is_commit_outcome_unknown(&e) => {
                let why = match e.as_db_error() {
                    Some(db) => {
                        format!("SQLSTATE {} at COMMIT: {}", db.code().code(), db.message())
                    }
                    None => e.to_string(),
                };
                self.dirty(m, 0, why).await
            }
            Part::Statement(i) => sql_failed(m, e, Some((step, i)), true),
            Part::Begin | Part::Commit => sql_failed(m, e, None, true),
        }))
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
        assert_eq!(in_flight_after(Part::FenceCheck, 3), 0);
        assert_eq!(in_flight_after(Part::Commit, 3), 0);
    }

    #[test]
    fn a_flight_is_begin_statements_fence_write_commit() {
        assert_eq!(
            flight(2),
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
            flight(0),
            vec![
                Part::Begin,
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Commit
            ]
        );
    }
}

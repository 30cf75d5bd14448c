//! A chain's pipelined flight: for each step `BEGIN ISOLATION LEVEL SERIALIZABLE` (after the
//! first step, with the chain's guard in the same simple query), the migration's
//! `SET LOCAL statement_timeout` / `lock_timeout` (its directives, else the defaults), each
//! statement as its own query, the fence check (which raises when the lease is not ours), the
//! ledger write, on CockroachDB `SET LOCAL statement_timeout = 0`, and `COMMIT`. All of it goes
//! out at once and the replies are read in order; each step's `migration.applied` (or
//! `migration.rolled_back`) is logged as its `COMMIT` answers, and the next step's
//! `migration.started` with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::FutureExt;
use tokio::sync::Notify;

use crate::plan::{Direction, Step};
use crate::report::Progress;
use crate::store::fence::{Checked, FenceCheck, FencedWrite, Param};

use super::failure::statements;
use super::{Applier, Prepared, chain, timeouts};

/// What each reply of a step's part of the flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Begin,
    /// `BEGIN` and the guard that the step before it in the chain committed.
    GuardedBegin,
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
/// first. It also keeps the fence check, the guard and the ledger write serializable. One
/// statement, so no round trip is added; PostgreSQL takes the same words.
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

/// The parts of one step's flight for `limits` `SET LOCAL`s and `n` statements, in the order
/// they are sent; `guarded`: a step after the first of its chain; `unlimit`: lift the
/// statement timeout before COMMIT (CockroachDB).
pub(super) fn flight(limits: usize, n: usize, guarded: bool, unlimit: bool) -> Vec<Part> {
    let mut parts = Vec::with_capacity(limits + n + 5);
    parts.push(if guarded {
        Part::GuardedBegin
    } else {
        Part::Begin
    });
    parts.extend((0..limits).map(Part::Limit));
    parts.extend((0..n).map(Part::Statement));
    parts.extend([Part::FenceCheck, Part::LedgerWrite]);
    if unlimit {
        parts.push(Part::Unlimit);
    }
    parts.push(Part::Commit);
    parts
}

/// The 1-based statement in flight once `done`'s reply is in, for a step of `n` statements
/// (replies come in order, so the next part is the one the server works on); 0 once the
/// statements are done (fence check, ledger write, COMMIT — where CockroachDB runs the
/// schema-change jobs of the transaction).
pub(super) fn in_flight_after(done: Part, n: usize) -> usize {
    match done {
        Part::Begin | Part::GuardedBegin | Part::Limit(_) if n > 0 => 1,
        Part::Statement(i) if i + 1 < n => i + 2,
        _ => 0,
    }
}

/// The server's reply to one part of a flight (rows affected; 0 for a simple query).
pub(super) type Reply = std::result::Result<u64, tokio_postgres::Error>;

/// One part's request, under way once first polled.
type Request<'r> = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + 'r>>;

/// What one step of a chain sends, borrowed by the flight's requests.
struct Ready<'s> {
    sqls: &'s [crate::split::Statement],
    limits: Vec<String>,
    /// `BEGIN`, or after the first step `BEGIN` and the guard.
    begin: String,
    finish: Checked<'s>,
    finish_statement: &'s Prepared,
}

/// Follows the replies as they come: the statement in flight (for `migration.progress`), and
/// each step's end, reported as it commits.
struct Track<'t> {
    applier: &'t Applier<'t>,
    steps: &'t [Step<'t>],
    /// The first step's index in the plan.
    base: usize,
    progress: &'t Progress,
    /// A reply failed: nothing after it is reported.
    broken: AtomicBool,
    /// The step in flight (in `steps`), and a wake-up when it changes.
    step: AtomicUsize,
    changed: Notify,
    statement: Arc<AtomicUsize>,
}

impl Track<'_> {
    fn after(&self, j: usize, part: Part, ok: bool) {
        if !ok || self.broken.load(Ordering::SeqCst) {
            self.broken.store(true, Ordering::SeqCst);
            return;
        }
        if part == Part::GuardedBegin {
            // Its guard passed: the step before it committed and no stop was asked for.
            self.applier.announce(&self.steps[j]);
        }
        let n = statements(&self.steps[j]).len();
        self.statement
            .store(in_flight_after(part, n), Ordering::SeqCst);
        if part != Part::Commit {
            return;
        }
        self.applier.finished(&self.steps[j], self.progress);
        if let Some(next) = self.steps.get(j + 1) {
            self.applier.at(self.base + j + 1);
            let n = statements(next).len();
            self.statement
                .store(in_flight_after(Part::Begin, n), Ordering::SeqCst);
            self.step.store(j + 1, Ordering::SeqCst);
            self.changed.notify_one();
        }
    }
}

impl<'a> Applier<'a> {
    /// What each step of `steps` sends.
    fn ready<'s>(&'s self, steps: &'s [Step<'s>]) -> Vec<Ready<'s>> {
        let f = &self.lease.fence;
        steps
            .iter()
            .enumerate()
            .map(|(j, step)| {
                let m = &*step.migration;
                let (finish, finish_statement) = match step.direction {
                    Direction::Up => (
                        Checked::Up {
                            migration: m,
                            fence: f,
                        },
                        &self.checked_up,
                    ),
                    Direction::Down => (
                        Checked::Down {
                            version: &m.version,
                        },
                        &self.checked_down,
                    ),
                };
                let begin = match j.checked_sub(1) {
                    Some(p) => chain::guarded_begin(BEGIN, &self.ledger, &steps[p], f.token),
                    None => BEGIN.to_string(),
                };
                // Held until the chain ends, 50 of them: `format!` leaves about 1 KiB of room
                // for 600 bytes.
                let mut begin = begin;
                begin.shrink_to_fit();
                Ready {
                    sqls: statements(step),
                    limits: timeouts::set_local(&timeouts::limits(m, &self.settings)),
                    begin,
                    finish,
                    finish_statement,
                }
            })
            .collect()
    }

    /// Sends every part of the chain `steps` (the first at `base` in the plan) at once, watched
    /// for `migration.progress`; each part (its step in `steps`) and the server's reply to it,
    /// in order. Steps are reported finished as their COMMITs answer.
    pub(super) async fn send_chain<'s>(
        &'s self,
        steps: &'s [Step<'s>],
        base: usize,
        progress: &'s Progress,
    ) -> (Vec<(usize, Part)>, Vec<Reply>) {
        let ready = self.ready(steps);
        let finish_params: Vec<Vec<Param<'_>>> = ready.iter().map(|r| r.finish.params()).collect();
        let check = FenceCheck {
            fence: &self.lease.fence,
        };
        let check_params = check.params();
        let parts: Vec<(usize, Part)> = ready
            .iter()
            .enumerate()
            .flat_map(|(j, r)| {
                let parts = flight(r.limits.len(), r.sqls.len(), j > 0, self.cockroach());
                parts.into_iter().map(move |p| (j, p))
            })
            .collect();
        let first = statements(&steps[0]).len();
        let track = Track {
            applier: self,
            steps,
            base,
            progress,
            broken: AtomicBool::new(false),
            step: AtomicUsize::new(0),
            changed: Notify::new(),
            statement: Arc::new(AtomicUsize::new(in_flight_after(Part::Begin, first))),
        };
        let (c, track, check_params) = (self.client, &track, &check_params);
        let (ready, finish_params) = (&ready, &finish_params);
        // Each request boxed at its own size: a simple query's future is about 150 bytes, a
        // prepared statement's about 1,100 (tokio-postgres keeps room to prepare one).
        let requests = parts.iter().map(|&(j, part)| -> Request<'_> {
            let r = &ready[j];
            let after = move |reply: Reply| {
                track.after(j, part, reply.is_ok());
                reply
            };
            let simple = |sql| Box::pin(c.batch_execute(sql).map(move |r| after(r.map(|()| 0))));
            match part {
                Part::Begin | Part::GuardedBegin => simple(&r.begin),
                Part::Limit(i) => simple(&r.limits[i]),
                Part::Statement(i) => simple(&r.sqls[i].text),
                Part::FenceCheck => Box::pin(c.execute(&self.fence_check, check_params).map(after)),
                Part::LedgerWrite => {
                    Box::pin(c.execute(r.finish_statement, &finish_params[j]).map(after))
                }
                Part::Unlimit => simple(UNLIMIT),
                Part::Commit => simple("COMMIT"),
            }
        });
        let flight = crate::pipeline::in_order_boxed(requests);
        let replies = self
            .watched(steps, track, self.stoppable(steps.len(), flight))
            .await;
        (parts, replies)
    }

    /// Runs the flight of a chain of `n` steps; when a stop is asked for meanwhile, takes the
    /// stop lock on the lease's connection, so the guards of the steps not yet started refuse
    /// (the step in flight goes on to its end), and lets it go once the flight is over. A lease
    /// connection that cannot take it only lets the chain run to its end.
    async fn stoppable<T>(&self, n: usize, flight: impl std::future::Future<Output = T>) -> T {
        if n < 2 {
            return flight.await;
        }
        tokio::pin!(flight);
        tokio::select! {
            biased;
            r = &mut flight => return r,
            () = self.cancel.cancelled() => {}
        }
        let lease = self.lease.client();
        let key = chain::stop_key(self.lease.fence.token);
        let params: [Param<'_>; 2] = [&self.ledger, &key];
        let bound = std::time::Duration::from_secs(5);
        let stop = tokio::time::timeout(bound, lease.execute(chain::STOP, &params));
        let (r, _) = tokio::join!(flight, stop);
        let _ = tokio::time::timeout(bound, lease.execute(chain::UNSTOP, &params)).await;
        r
    }

    /// Runs `flight`, logging `migration.progress` meanwhile for the step `track` says is in
    /// flight (the watch starts over, with its own elapsed time, at each step).
    async fn watched<T>(
        &self,
        steps: &[Step<'_>],
        track: &Track<'_>,
        flight: impl std::future::Future<Output = T>,
    ) -> T {
        let Some(w) = self.watch.as_ref() else {
            return flight.await;
        };
        tokio::pin!(flight);
        loop {
            let version = steps[track.step.load(Ordering::SeqCst)].migration.version;
            let changed = track.changed.notified();
            let statement = track.statement.clone();
            let watching =
                crate::progress::watch(&w.client, w.flavour, w.pid, version, statement, w.interval);
            tokio::select! {
                biased;
                r = &mut flight => return r,
                () = changed => {}
                never = watching => match never {},
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_in_flight_follows_the_replies() {
        assert_eq!(in_flight_after(Part::Begin, 3), 1);
        assert_eq!(in_flight_after(Part::GuardedBegin, 3), 1);
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
            flight(0, 2, false, false),
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
            flight(0, 0, false, false),
            vec![
                Part::Begin,
                Part::FenceCheck,
                Part::LedgerWrite,
                Part::Commit
            ]
        );
    }

    #[test]
    fn a_chained_step_begins_with_its_guard_and_adds_no_part() {
        let first = flight(1, 2, false, false);
        let chained = flight(1, 2, true, false);
        assert_eq!(chained.len(), first.len());
        assert_eq!(chained[0], Part::GuardedBegin);
        assert_eq!(chained[1..], first[1..]);
    }

    #[test]
    fn on_cockroachdb_the_timeout_is_lifted_right_before_commit() {
        assert_eq!(
            flight(1, 1, false, true),
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
            flight(2, 1, false, false),
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

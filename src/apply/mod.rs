//! Executing a plan under the lease: each step one transaction holding the migration's SQL and
//! its fenced ledger write, consecutive ones chained into one pipelined flight (`chain`,
//! `flight`, `transaction`), replayed on SQLSTATE 40001 (`transaction`, `replay`), marked dirty
//! when the commit's outcome is unknown (XXA00, 40003); `@NO_TRANSACTION` steps run statement
//! by statement with a journal in `statements_done` (`no_transaction`), so a rerun resumes
//! after the last one done. Knows nothing of files: it runs the migrations a plan hands it.
//! Per-file `statement_timeout` / `lock_timeout` are set for each step (`timeouts`); a lock
//! timeout (55P03) rolls back and retries with backoff, and when the retries run out the error
//! names the sessions holding the lock (`blockers`). A failed step's error names the statement
//! and line of the file it stopped at (`failure`).

mod blockers;
mod chain;
mod failure;
mod flight;
mod no_transaction;
mod report;
mod timeouts;

mod replay;
mod stall;
mod transaction;

use std::time::Instant;

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::log::events;
use crate::plan::{Direction, Plan, Step};
use crate::report::Progress;
use crate::session::Lease;
use crate::source::Migration;
use crate::sqlstate;
use crate::store::Tables;
use crate::store::fence::{
    Checked, Fence, FenceCheck, FencedWrite, MarkDirty, Param, Record, Restore, Unrecord,
};

use failure::{failed_statement, sql_failed, statements};
use replay::{LedgerWriteError, replay};

pub(crate) use failure::excerpt;
pub(crate) use no_transaction::may_start_a_job;

/// Runs plans on one connection under a lease.
pub struct Applier<'a> {
    client: &'a Client,
    lease: &'a Lease,
    cancel: &'a CancellationToken,
    record: Prepared,
    unrecord: Prepared,
    mark_dirty: Prepared,
    fence_check: Prepared,
    restore: Prepared,
    checked_up: Prepared,
    checked_down: Prepared,
    /// The ledger table, quoted (the chains' guards read it).
    ledger: String,
    watch: Option<crate::progress::Watch>,
    stall: Option<stall::StallCheck>,
    settings: Settings,
    /// The plan step last started (its index) and when: the one a lost connection cut.
    in_flight: std::sync::Mutex<Option<(usize, Instant)>>,
}

/// Defaults and limits for the steps' per-file settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `MIGRATE_STATEMENT_TIMEOUT`: used when a file has no `-- @STATEMENT_TIMEOUT`.
    pub statement_timeout: Option<std::time::Duration>,
    /// `MIGRATE_LOCK_TIMEOUT`: used when a file has no `-- @LOCK_TIMEOUT`.
    pub lock_timeout: Option<std::time::Duration>,
    /// `MIGRATE_LOCK_RETRIES`: retries of a transactional step after a lock timeout.
    pub lock_retries: u32,
    /// The server, for the blocker lookup (PostgreSQL's `pg_locks`).
    pub flavour: crate::connect::Flavour,
}

impl Settings {
    /// The settings `config` asks for, on a `flavour` server.
    pub fn new(config: &crate::config::Config, flavour: crate::connect::Flavour) -> Settings {
        Settings {
            statement_timeout: config.statement_timeout,
            lock_timeout: config.lock_timeout,
            lock_retries: config.lock_retries,
            flavour,
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            statement_timeout: None,
            lock_timeout: None,
            lock_retries: crate::config::DEFAULT_LOCK_RETRIES,
            flavour: crate::connect::Flavour::PostgreSQL,
        }
    }
}

/// A prepared statement (tokio-postgres' `Statement`, named apart from the file's statements).
type Prepared = tokio_postgres::Statement;

impl<'a> Applier<'a> {
    /// Prepares the fenced ledger statements on `client` (the migration connection), all in
    /// one pipelined flight.
    pub async fn new(
        client: &'a Client,
        tables: &Tables,
        lease: &'a Lease,
        cancel: &'a CancellationToken,
    ) -> Result<Applier<'a>> {
        let sqls = [
            Record::sql(tables),
            Unrecord::sql(tables),
            MarkDirty::sql(tables),
            FenceCheck::sql(tables),
            Restore::sql(tables),
            Checked::up_sql(tables),
            Checked::down_sql(tables),
        ];
        let prepared =
            crate::pipeline::in_order(sqls.iter().map(|sql| client.prepare(sql)).collect()).await;
        let mut prepared = prepared.into_iter();
        let mut next = || match prepared.next() {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(Error::db("preparing ledger statements", e)),
            None => Err(Error::Database {
                context: "preparing ledger statements".into(),
                sqlstate: None,
                message: "a statement was not prepared".into(),
                source: None,
            }),
        };
        Ok(Applier {
            client,
            lease,
            cancel,
            record: next()?,
            unrecord: next()?,
            mark_dirty: next()?,
            fence_check: next()?,
            restore: next()?,
            checked_up: next()?,
            checked_down: next()?,
            ledger: tables.ledger().to_string(),
            watch: None,
            stall: None,
            settings: Settings::default(),
            in_flight: std::sync::Mutex::new(None),
        })
    }

    /// Logs `migration.progress` while a step's statements run, read on the lease's
    /// connection every `interval` for the migration connection (backend `pid`); `None`
    /// (`MIGRATE_PROGRESS_INTERVAL=0`) leaves it off.
    pub fn with_progress(
        mut self,
        flavour: crate::connect::Flavour,
        pid: i32,
        interval: Option<std::time::Duration>,
    ) -> Applier<'a> {
        self.watch = interval.map(|interval| crate::progress::Watch {
            client: self.lease.client().clone(),
            flavour,
            pid,
            interval,
        });
        // PostgreSQL shows our backend's state: a server idle on us past the lease's TTL while
        // a step is outstanding means the connection is gone without an error.
        if flavour == crate::connect::Flavour::PostgreSQL {
            self.stall = Some(stall::StallCheck {
                client: self.lease.client(),
                pid,
                limit: std::time::Duration::from_millis(self.lease.fence.ttl_ms.max(1000) as u64),
            });
        }
        self
    }

    /// Per-file settings' defaults and the lock-retry budget (else: none, and 5 retries).
    pub fn with_settings(mut self, settings: Settings) -> Applier<'a> {
        self.settings = settings;
        self
    }

    /// Is the server CockroachDB?
    fn cockroach(&self) -> bool {
        self.settings.flavour == crate::connect::Flavour::CockroachDB
    }

    /// Stop before the next piece of work: a stop was asked for, or the heartbeat lost the lease.
    fn check_go_on(&self, where_: impl FnOnce() -> String) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Terminated);
        }
        if self.lease.is_lost() {
            return Err(self.lease.lost_error(where_()));
        }
        Ok(())
    }

    /// Runs every step of `plan` in order, recording each finished version in `progress` (so a
    /// failure still says what was applied): consecutive transactional steps as one chain, a
    /// `@NO_TRANSACTION` step alone. Stops before a chain or step when a stop was requested.
    pub async fn run(&self, plan: &Plan<'_>, progress: &Progress) -> Result<()> {
        let steps = &plan.steps;
        let mut i = 0;
        while i < steps.len() {
            self.check_go_on(|| "the heartbeat found the lease expired or taken".into())?;
            let step = &steps[i];
            let end = match step.migration.no_transaction {
                true => i + 1,
                false => chain::end(steps, i, self.cockroach()),
            };
            self.started(i, step);
            let work = async {
                if step.migration.no_transaction {
                    self.step_no_transaction(step).await?;
                    self.finished(step, progress);
                    Ok(1)
                } else {
                    self.step_chain(&steps[i..end], i, progress).await
                }
            };
            let result = match &self.stall {
                Some(check) => check.guard(work).await,
                None => work.await,
            };
            match result {
                // A stop cut the chain short: the check above ends the run.
                Ok(done) => i += done,
                Err(e) => {
                    let at = self.in_flight().map_or(i, |(at, _)| at);
                    self.failed(&steps[at.min(end - 1)], &e);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
    /// The step of the last plan [`Applier::run`] ran that was started last (its index in the
    /// plan) and when it started: after a lost connection, the step it cut.
    pub(crate) fn in_flight(&self) -> Option<(usize, Instant)> {
        self.in_flight.lock().ok().and_then(|at| *at)
    }

    /// Runs one autocommitted, fenced ledger statement (journal, dirty mark, the final record of
    /// a no-transaction step), replayed on 40001.
    async fn ledger_write(
        &self,
        m: &Migration,
        statement: &Prepared,
        params: &[Param<'_>],
    ) -> std::result::Result<u64, LedgerWriteError> {
        replay(m, "the ledger write", || {
            self.client.execute(statement, params)
        })
        .await
        .map_err(|(e, attempts)| {
            if sqlstate::is_retry(&e) {
                LedgerWriteError::Exhausted(Error::RetriesExhausted {
                    version: m.version,
                    attempts,
                })
            } else {
                LedgerWriteError::Db(e)
            }
        })
    }

    /// The fenced dirty-mark / journal write, replayed on 40001.
    async fn write_dirty(
        &self,
        m: &Migration,
        statements_done: i64,
    ) -> std::result::Result<u64, LedgerWriteError> {
        let write = MarkDirty {
            migration: m,
            statements_done,
            fence: &self.lease.fence,
        };
        self.ledger_write(m, &self.mark_dirty, &write.params())
            .await
    }

    /// Marks `m` dirty in its own transaction and returns the error to stop with.
    pub(crate) async fn dirty(&self, m: &Migration, statements_done: i64, why: String) -> Error {
        let marked = self.write_dirty(m, statements_done).await;
        let message = match marked {
            Ok(1) => why,
            Ok(_) => {
                format!("{why}; the dirty mark could not be written: the lease is no longer ours")
            }
            Err(e) => format!("{why}; the dirty mark could not be written: {e}"),
        };
        tracing::error!(
            event = events::MIGRATION_DIRTY,
            version = m.version,
            description = %m.description,
            checksum = %m.checksum,
            statements_done,
            reason = %message,
            "migration marked dirty"
        );
        Error::PartiallyApplied {
            version: m.version,
            file: m.path.clone(),
            message,
        }
    }
}

/// The fenced write that ends a step: record the migration (up) or remove its row (down).
enum Finish<'w> {
    Record(Record<'w>),
    Unrecord(Unrecord<'w>),
}

impl<'w> Finish<'w> {
    fn new(
        step: &'w Step<'_>,
        fence: &'w Fence,
        duration_ms: Option<i64>,
        statements_done: i64,
    ) -> Finish<'w> {
        let m = &*step.migration;
        match step.direction {
            Direction::Up => Finish::Record(Record {
                migration: m,
                duration_ms,
                fence,
                statements_done,
            }),
            Direction::Down => Finish::Unrecord(Unrecord {
                version: &m.version,
                fence,
            }),
        }
    }

    fn statement<'a>(&self, a: &'a Applier<'_>) -> &'a Prepared {
        match self {
            Finish::Record(_) => &a.record,
            Finish::Unrecord(_) => &a.unrecord,
        }
    }

    fn params(&self) -> Vec<Param<'_>> {
        match self {
            Finish::Record(r) => r.params(),
            Finish::Unrecord(u) => u.params(),
        }
    }
}

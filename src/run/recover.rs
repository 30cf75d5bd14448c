//! Recover, when the migration connection drops: a new connection once the old session is
//! gone and the lease is known to be still ours ([`Run::recover`]); then, on CockroachDB, the
//! step whose connection dropped is settled before the run goes on ([`Run::settle`]). Its
//! transaction's row commits with it, so the ledger says whether it committed; but COMMIT
//! there also waits for the schema-change jobs and answers with their outcome, and that answer
//! was lost. So when the row says the step committed, its jobs are waited for and judged
//! (`jobs::verdict`): one that failed, was canceled, stopped or outlasted
//! `MIGRATE_JOB_WAIT_TIMEOUT` marks the version dirty (exit 31), and so do jobs that cannot be
//! listed when the step's SQL can start one. PostgreSQL's DDL is transactional: nothing to
//! settle there, even when the drop cut a chain of transactional steps with several COMMITs in
//! flight: the ledger, re-read once the old backend is gone, says which of them committed, and
//! the new plan starts after the last. (CockroachDB never chains, so there the cut step is the
//! only one whose COMMIT can be unknown.) `@NO_TRANSACTION` steps neither: each statement's
//! reply (its jobs' outcome) came before the row was written.

use std::time::Instant;

use super::{Run, Session, lease};
use crate::apply::{self, Applier};
use crate::connect::{self, Flavour};
use crate::error::{Error, Result};
use crate::flavour;
use crate::jobs;
use crate::log::events;
use crate::plan::{Direction, Plan};
use crate::session::Lease;
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

/// The transactional step a lost connection cut, kept until the ledger says what became of it.
pub(super) struct InFlight {
    migration: Migration,
    direction: Direction,
    started: Instant,
}

impl InFlight {
    /// The transactional step `applier` had in flight when `result` (its run of `plan`) lost
    /// the connection; `None` for any other result or a `@NO_TRANSACTION` step.
    pub(super) fn cut(plan: &Plan<'_>, applier: &Applier<'_>, result: &Result<()>) -> Option<Self> {
        if !result.as_ref().is_err_and(Error::is_connection_lost) {
            return None;
        }
        let (i, started) = applier.in_flight()?;
        let step = plan.steps.get(i)?;
        (!step.migration.no_transaction).then(|| InFlight {
            migration: step.migration.clone().into_owned(),
            direction: step.direction,
            started,
        })
    }

    /// The ledger says the step's transaction committed: the row is applied (up), or gone
    /// (down).
    fn committed(&self, rows: &[AppliedRow]) -> bool {
        let row = rows.iter().find(|r| r.version == self.migration.version);
        match self.direction {
            Direction::Up => row.is_some_and(|r| !r.dirty),
            Direction::Down => row.is_none(),
        }
    }

    /// The statements the step ran.
    fn statements(&self) -> &[crate::split::Statement] {
        let m = &self.migration;
        match self.direction {
            Direction::Up => &m.up_statements,
            Direction::Down => m.down_statements.as_deref().unwrap_or(&[]),
        }
    }
}

impl Run {
    /// Recover: a new migration connection after the old one dropped, once the old session is
    /// gone and the lease is known to be still ours.
    pub(super) async fn recover(
        &self,
        lease: &Lease,
        (old_token, old_pid): (tokio_postgres::CancelToken, Option<flavour::SessionRef>),
        attempt: u32,
        cause: Error,
    ) -> Result<Session> {
        let down = std::time::Instant::now();
        tracing::warn!(
            event = events::DB_WAIT,
            attempt,
            reason = %cause,
            "the migration connection dropped; reconnecting"
        );
        let url = self.stop.url(&self.config)?;
        let (client, info) =
            connect::wait_and_connect(url, self.config.wait_timeout, false).await?;
        // The old session may still be running our last flight: end it, so the ledger says
        // for certain whether that step committed.
        flavour::end_session(&client, info.flavour, url, &old_token, old_pid).await;
        lease::still_ours(&client, &self.tables, lease).await?;
        tracing::warn!(
            event = events::DB_RECONNECTED,
            connection = "migration",
            attempt,
            downtime_ms = down.elapsed().as_millis() as u64,
            holder = %lease.fence.holder,
            fence = lease.fence.token,
            "reconnected; the lease is still ours, carrying on from the ledger"
        );
        Ok(Session { client, info })
    }

    /// Settles the step a lost connection cut (`in_flight`), now that `rows` (read on the new
    /// connection) say whether it committed: on CockroachDB, when it did, waits for its
    /// schema-change jobs and marks it dirty through `applier` (exit 31) unless they all
    /// succeeded. Cleared once settled; kept when the check itself loses the connection.
    pub(super) async fn settle(
        &self,
        session: &Session,
        rows: &[AppliedRow],
        applier: &Applier<'_>,
        in_flight: &mut Option<InFlight>,
    ) -> Result<()> {
        let Some(f) = in_flight.as_ref() else {
            return Ok(());
        };
        if session.info.flavour == Flavour::CockroachDB && f.committed(rows) {
            let statements = f.statements();
            let mut tables: Vec<String> = statements
                .iter()
                .flat_map(|s| jobs::words_of(&s.text))
                .collect();
            tables.sort();
            tables.dedup();
            let ddl = statements.iter().any(|s| apply::may_start_a_job(&s.text));
            let (client, timeout) = (&session.client, self.config.job_wait_timeout);
            let verdict = jobs::verdict(client, &tables, f.started, timeout, self.stop.token());
            let what = match f.direction {
                Direction::Up => "applied",
                Direction::Down => "rolled back",
            };
            if let Some(why) = jobs::dirty_reason(&verdict.await?, what, ddl) {
                return Err(applier.dirty(&f.migration, 0, why).await);
            }
        }
        *in_flight = None;
        Ok(())
    }
}

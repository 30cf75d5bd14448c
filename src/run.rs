//! A run under the lease, for `migrate` and `rollback`: plan without the lease, take it (the
//! acquisition's flight re-reads the ledger), apply, and when the migration connection drops,
//! reconnect within `MIGRATE_WAIT_TIMEOUT`, end the old session, check the lease is still ours
//! and go on from what the ledger says (a step's row commits with it). Releases on every path.

use tokio_postgres::Client;

use crate::apply::Applier;
use crate::connect::{self, Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::flavour;
use crate::jobs;
use crate::log::events;
use crate::migrator::Migrator;
use crate::plan::Plan;
use crate::preload::{Ready, first_read};
use crate::session::{self, Lease};
use crate::source::Migration;
use crate::status;
use crate::store::lease;
use crate::store::ledger::{self, AppliedRow};

impl Migrator {
    /// Plans from the ledger without the lease; when there is work, takes the lease (the same
    /// flight re-reads the ledger: a peer may have done the work), re-plans and applies,
    /// reconnecting when the connection drops.
    pub(crate) async fn run_locked<'s, F>(
        &self,
        set: &'s [Migration],
        mut connected: Option<Ready>,
        make_plan: F,
    ) -> Result<()>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        // Nothing is held before the lease: a connection lost until then starts over (bounded),
        // each attempt waiting for the database within MIGRATE_WAIT_TIMEOUT as at the start.
        let mut attempt = 0u32;
        let (client, info, lease, rows) = loop {
            match self
                .up_to_the_lease(set, connected.take(), &make_plan)
                .await
            {
                Ok(Some(ready)) => break ready,
                Ok(None) => return Ok(()),
                Err(e)
                    if e.is_connection_lost()
                        && attempt < MAX_RECONNECTS
                        && !self.cancel.is_cancelled() =>
                {
                    attempt += 1;
                    tracing::warn!(
                        event = events::DB_WAIT,
                        attempt,
                        reason = %e,
                        "a connection dropped before the lease was taken; starting over"
                    );
                }
                Err(e) => return Err(e),
            }
        };
        self.guard.hold(&lease);
        self.work_under_lease(client, info, set, &lease, rows, &make_plan)
            .await
    }

    /// Connects, plans without the lease and, when there is work, takes it: the migration
    /// connection, the lease and the ledger's rows under it. `None`: nothing to do.
    #[allow(clippy::type_complexity)]
    async fn up_to_the_lease<'s, F>(
        &self,
        set: &'s [Migration],
        connected: Option<Ready>,
        make_plan: &F,
    ) -> Result<Option<(Client, ServerInfo, Lease, Option<Vec<AppliedRow>>)>>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        let (client, info, (ledger, foreign)) = match connected {
            Some(ready) => (ready.client, ready.info, ready.first),
            None => {
                let (client, info) = self.connect().await?;
                let first = first_read(&client, &self.tables).await;
                (client, info, first)
            }
        };
        let ledger = ledger?;
        self.progress.at(ledger.current());
        let first = make_plan(set, &ledger.rows);
        if first.as_ref().is_ok_and(|p| !p.steps.is_empty()) {
            let present =
                foreign.map_err(|e| Error::db("looking for other tools' history tables", e))?;
            self.check_foreign_history(&client, &ledger.rows, Some(&present))
                .await?;
        }
        match first {
            Ok(first) if first.steps.is_empty() => {
                tracing::info!(
                    event = events::RUN_NOTHING_TO_DO,
                    current = first.current,
                    target = first.target,
                    "nothing to do"
                );
                return Ok(None);
            }
            Ok(_) => {}
            // A dirty row seen without the lease may be a peer's no-transaction migration in
            // progress: only what the ledger says under the lease is final.
            Err(Error::Disagreement(_)) if ledger.rows.iter().any(|r| r.dirty) => {}
            Err(e) => return Err(e),
        }
        // The lease's connection opens only now that there is work: a run with nothing to do
        // stays one connection (opening a backend costs the server more than the round trip
        // it would save).
        let side = connect::wait_and_connect_side(self.url()?, self.config.wait_timeout).await?;
        let (lease, rows) = self.acquire_on(side, true).await?;
        Ok(Some((client, info, lease, rows)))
    }

    /// Applies under `lease`; when the migration connection drops, reconnects within
    /// `MIGRATE_WAIT_TIMEOUT`, ends the old session, checks the lease is still ours and goes on
    /// from what the ledger says (a step's row commits with it). Releases the lease at the end.
    async fn work_under_lease<'s, F>(
        &self,
        mut client: Client,
        mut info: ServerInfo,
        set: &'s [Migration],
        lease: &Lease,
        mut rows: Option<Vec<AppliedRow>>,
        make_plan: &F,
    ) -> Result<()>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        let mut reconnects = 0u32;
        let result = loop {
            self.guard.working(Some(client.cancel_token()));
            let pid = std::cell::Cell::new(None);
            let result = self
                .apply_under_lease(&client, &info, set, lease, rows.take(), &pid, make_plan)
                .await;
            match result {
                Err(e)
                    if e.is_connection_lost()
                        && reconnects < MAX_RECONNECTS
                        && !self.cancel.is_cancelled() =>
                {
                    reconnects += 1;
                    let old = (client.cancel_token(), pid.get());
                    match self.reconnect(lease, old, reconnects, e).await {
                        Ok((c, i)) => (client, info) = (c, i),
                        Err(e) => break Err(e),
                    }
                }
                r => break r,
            }
        };
        self.guard.release(Some(&client)).await;
        result
    }

    /// A new migration connection after the old one dropped, once the old session is gone and
    /// the lease is known to be still ours.
    async fn reconnect(
        &self,
        lease: &Lease,
        (old_token, old_pid): (tokio_postgres::CancelToken, Option<flavour::SessionRef>),
        attempt: u32,
        cause: Error,
    ) -> Result<(Client, ServerInfo)> {
        let down = std::time::Instant::now();
        tracing::warn!(
            event = events::DB_WAIT,
            attempt,
            reason = %cause,
            "the migration connection dropped; reconnecting"
        );
        let url = self.url()?;
        let (client, info) =
            connect::wait_and_connect(url, self.config.wait_timeout, false).await?;
        // The old session may still be running our last flight: end it, so the ledger says
        // for certain whether that step committed.
        flavour::end_session(&client, info.flavour, url, &old_token, old_pid).await;
        match lease::is_ours(&client, &self.tables, &lease.fence).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(
                    lease.lost_error("after reconnecting, the lease was expired or taken".into())
                );
            }
            Err(e) => return Err(Error::db("checking the lease after reconnecting", e)),
        }
        tracing::warn!(
            event = events::DB_RECONNECTED,
            connection = "migration",
            attempt,
            downtime_ms = down.elapsed().as_millis() as u64,
            holder = %lease.fence.holder,
            fence = lease.fence.token,
            "reconnected; the lease is still ours, carrying on from the ledger"
        );
        Ok((client, info))
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_under_lease<'s, F>(
        &self,
        client: &Client,
        info: &ServerInfo,
        set: &'s [Migration],
        lease: &Lease,
        rows: Option<Vec<AppliedRow>>,
        pid_out: &std::cell::Cell<Option<flavour::SessionRef>>,
        make_plan: &F,
    ) -> Result<()>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        let prepared = flavour::prepare_session(
            client,
            info.flavour,
            self.config.statement_timeout,
            self.config.lease_ttl,
            self.config.environment.as_deref().unwrap_or(""),
        );
        // The session settings and the ledger statements go in one flight; a seed-made ledger
        // is adopted first (the statements name our columns).
        let (pid, rows, applier) = match rows {
            Some(rows) => {
                let statements = Applier::new(client, &self.tables, lease, &self.cancel);
                let (pid, applier) = tokio::join!(prepared, statements);
                (pid?, rows, applier?)
            }
            None => {
                let (pid, ledger) =
                    tokio::join!(prepared, ledger::read_adopted(client, &self.tables));
                let applier = Applier::new(client, &self.tables, lease, &self.cancel).await?;
                (pid?, ledger?.rows, applier)
            }
        };
        pid_out.set(Some(pid));
        let plan = make_plan(set, &rows)?;
        self.progress.at(ledger::current(&rows));
        if plan.steps.is_empty() {
            tracing::info!(
                event = events::RUN_NOTHING_TO_DO,
                current = plan.current,
                target = plan.target,
                "a peer finished the work; nothing to do"
            );
            return Ok(());
        }
        if info.flavour == Flavour::CockroachDB {
            let tables = jobs::words_of_steps(&plan);
            jobs::at_start(client, &tables, self.config.job_wait_timeout, &self.cancel).await?;
        }
        let applier = applier
            .with_progress(info.flavour, pid.pid, self.config.progress_interval)
            .with_settings(crate::apply::Settings::new(&self.config, info.flavour));
        let result = match applier.run(&plan, &self.progress).await {
            Err(e) if may_be_fenced_off(&e) => Err(fenced_off_or(lease, e).await),
            r => r,
        };
        self.progress.at(match result {
            Ok(()) => plan.target,
            Err(_) => status::current_after(&rows, &plan, &self.progress.snapshot().versions),
        });
        result
    }

    /// Takes the lease on `side` (a connection of its own: the heartbeat must not land inside
    /// a migration's transaction), creating the bookkeeping first when `set_up`.
    async fn acquire_on(
        &self,
        side: Client,
        set_up: bool,
    ) -> Result<(Lease, Option<Vec<AppliedRow>>)> {
        let conn = session::LeaseConn::new(side, self.url()?.clone(), self.config.wait_timeout);
        session::acquire(
            conn,
            &self.tables,
            &self.config.holder,
            self.config.lease_ttl,
            self.config.lease_timeout,
            set_up,
            &self.cancel,
        )
        .await
    }

    /// Opens the lease's connection and takes the lease (tables created first if needed).
    pub(crate) async fn take_lease(&self) -> Result<Lease> {
        let side = connect::wait_and_connect_side(self.url()?, self.config.wait_timeout).await?;
        Ok(self.acquire_on(side, true).await?.0)
    }
}

/// How many times one run reconnects before it gives up (exit 10).
const MAX_RECONNECTS: u32 = 20;

/// Errors a step can meet because a peer took the lease while we worked (a frozen holder
/// woken after a takeover: its connection ended by the server, its `CREATE TABLE` finding the
/// peer's table, ...). Not a dirty mark (31): that needs an operator whatever the lease says.
fn may_be_fenced_off(e: &Error) -> bool {
    !matches!(
        e,
        Error::LeaseLost { .. } | Error::Terminated | Error::PartiallyApplied { .. }
    )
}

/// `e`, or a lease loss (exit 12) when the lease is no longer ours: nothing of the failed step
/// was committed (the fenced ledger write is in its transaction), and a runner fenced off must
/// be retried (12, Count), not fail the Job (30) or blame the network (10) for what its
/// successor did. A genuine failure shows up again, as itself, in the next holder's run.
async fn fenced_off_or(lease: &Lease, e: Error) -> Error {
    match lease.still_ours().await {
        Some(false) => {
            tracing::error!(
                event = events::LEASE_LOST,
                holder = %lease.fence.holder,
                fence = lease.fence.token,
                error = %e,
                "lease lost while working: it expired or another runner took it"
            );
            lease.lost_error(format!(
                "the lease expired or was taken while working ({e})"
            ))
        }
        _ => e,
    }
}

//! One run of `migrate` or `rollback` against one database, as a value: a [`Run`] is built
//! from validated settings and a [`Goal`], and [`Run::run`] takes its steps in the order they
//! read here — load the files while connecting, plan without the lease, take the lease (its
//! flight re-reads the ledger: a peer may have done the work), apply, recover when the
//! migration connection drops (reconnect within `MIGRATE_WAIT_TIMEOUT`, end the old session,
//! check the lease is still ours, go on from what the ledger says), release — and returns what
//! it did with how it ended ([`Outcome`]). Each run has its own connections, lease, [`Stop`]
//! and report, so several can run at once in one process.

use std::sync::{Arc, Mutex};

use tokio_postgres::Client;

use crate::apply::{self, Applier};
use crate::config::Config;
use crate::connect::{Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::flavour;
use crate::jobs;
use crate::log::events;
use crate::plan::{Allow, Goal, Plan};
use crate::report::{Outcome, Progress};
use crate::session::{Lease, Reread};
use crate::source::Migration;
use crate::status;
use crate::store::Tables;
use crate::store::ledger::{self, AppliedRow, Ledger};

mod drift;
mod first;
mod foreign;
mod lease;
mod load;
mod prepare;
mod recover;
mod reuse;
mod stop;

pub(crate) use drift::drift_of;
pub(crate) use lease::take_lease;
use lease::unless_fenced_off;
pub(crate) use load::{foreign_layout, loading};
use recover::InFlight;
pub(crate) use reuse::{Pool, Set, Tenant};
pub use stop::Stop;

/// How many times one run reconnects before it gives up (exit 10).
const MAX_RECONNECTS: u32 = 20;
/// One run for one database: built, then taken with [`Run::run`] (see the crate's example).
pub struct Run {
    config: Config,
    goal: Goal,
    tables: Tables,
    stop: Stop,
    progress: Progress,
    /// The files, when they were loaded already (a fleet loads them once for every run).
    set: Option<Arc<Vec<Migration>>>,
    /// A schema target of a fleet: takes and gives back connections (see `reuse`).
    tenant: Option<Tenant>,
    /// The lease connection that came with a reused migration connection, until the lease.
    spare_side: Mutex<Option<Arc<Client>>>,
    /// Schema drift: checked once before the first step, stored at the release.
    drift: drift::State,
}

/// The migration connection.
struct Session {
    client: Client,
    info: ServerInfo,
}

/// The first read on a migration connection, in one flight: the ledger, and which other
/// tools' history tables exist (see `foreign`).
struct FirstRead {
    ledger: Ledger,
    present: Result<Vec<String>>,
}

/// A migration connection made, and its first read (an error in it is the attempt's).
struct Ready {
    session: Session,
    first: Result<FirstRead>,
}

/// Under the lease: the migration connection and the ledger as the acquisition read it.
struct Leased {
    session: Session,
    lease: Lease,
    reread: Reread,
}

/// The migration session prepared under the lease: who the session is (backend pid, or
/// CockroachDB's session id), ledger rows, applier.
struct Prepared<'a> {
    pid: flavour::SessionRef,
    rows: Vec<AppliedRow>,
    applier: Applier<'a>,
    /// The stored schema, read in the same flight until the run's drift check is done.
    drift: drift::Read,
}

impl Run {
    /// A run towards `goal` with `config` (its own connections, lease, [`Stop`] and report).
    /// `config.target_version` is not read here: put it in the goal (`Goal::Up(target)`).
    pub fn new(config: Config, goal: Goal) -> Run {
        Run::with(config, goal, Stop::default(), Progress::default())
    }

    /// A run sharing `stop` and `progress` with a [`crate::Migrator`].
    pub(crate) fn with(config: Config, goal: Goal, stop: Stop, progress: Progress) -> Run {
        Run {
            tables: Tables::new(&config.table)
                .with_undo(!matches!(goal, Goal::Up(_)))
                .scoped(config.database_url()),
            config,
            goal,
            stop,
            progress,
            set: None,
            tenant: None,
            spare_side: Mutex::new(None),
            drift: Default::default(),
        }
    }

    /// A run that uses `set`, loaded already, instead of loading the files itself.
    pub(crate) fn with_set(config: Config, goal: Goal, set: Arc<Vec<Migration>>) -> Run {
        Run {
            set: Some(set),
            ..Run::new(config, goal)
        }
    }

    /// A run of target `name` of a fleet that takes its connections from `pool` and gives
    /// them back after a clean end, when its URL sets a `search_path` (a schema target).
    pub(crate) fn reusing(mut self, pool: &Pool, name: &str) -> Run {
        let url = self.stop.url(&self.config).ok();
        self.tenant = url.and_then(|url| pool.tenant(name, url));
        self
    }

    /// The handle that stops this run.
    pub fn stop(&self) -> Stop {
        self.stop.clone()
    }

    /// Takes the run's steps; returns what it did, also when it failed or was stopped.
    pub async fn run(mut self) -> Outcome {
        self.progress.reset();
        let stop = self.stop.clone();
        // What the run learns about listing CockroachDB's jobs is its own (jobs::per_run).
        // The steps' future is boxed: every future that awaits it (the signal handling, a
        // fleet's schedule) would otherwise hold its ~15 KiB, some of them twice, and build it
        // on the stack first.
        let result = jobs::per_run(stop.or_abandoned(Box::pin(self.steps()))).await;
        Outcome {
            report: self.progress.snapshot(),
            result,
        }
    }

    /// The steps, in order: load (while connecting), plan and lease (starting over if a
    /// connection drops first), apply (recovering from dropped connections), release. Nothing
    /// is written before the lease.
    async fn steps(&mut self) -> Result<()> {
        let (set, ready) = self.load_and_connect().await?;
        let Some(mut leased) = self.plan_and_lease(&set, ready).await? else {
            return Ok(());
        };
        let guard = self.stop.guard();
        guard.hold(&leased.lease);
        let result = self.apply_recovering(&mut leased, &set).await;
        let release = guard.release(Some(&leased.session.client));
        drift::store_and_release(&self.drift, &leased, &self.tables, release).await;
        if result.is_ok() {
            let side = leased.lease.client();
            self.keep(leased.session, Some(side));
        }
        result
    }

    /// Load: the files (unless given), read while connecting. A run that may create the database loads first,
    /// so bad files never leave a new database behind.
    async fn load_and_connect(&self) -> Result<(Arc<Vec<Migration>>, Ready)> {
        if let Some(set) = &self.set {
            return Ok((set.clone(), self.connect().await?));
        }
        if self.config.create_database {
            let set = loading(&self.config)?.finish().map_err(Error::Source)?;
            return Ok((Arc::new(set), self.connect().await?));
        }
        let (set, ready) = load::load_while(|| loading(&self.config), self.connect()).await?;
        Ok((Arc::new(set), ready))
    }

    /// Plan and lease, starting over (bounded) when a connection drops before the lease is
    /// taken: nothing is held yet, and each attempt waits for the database within
    /// MIGRATE_WAIT_TIMEOUT as at the start. `None`: nothing to do.
    async fn plan_and_lease(&mut self, set: &[Migration], ready: Ready) -> Result<Option<Leased>> {
        let mut ready = Some(ready);
        let mut attempt = 0u32;
        loop {
            let tried = async {
                let ready = match ready.take() {
                    Some(ready) => ready,
                    None => self.connect().await?,
                };
                self.attempt_plan_and_lease(set, ready).await
            };
            match tried.await {
                Err(e)
                    if e.is_connection_lost()
                        && attempt < MAX_RECONNECTS
                        && !self.stop.is_cancelled() =>
                {
                    attempt += 1;
                    tracing::warn!(
                        event = events::DB_WAIT,
                        attempt,
                        reason = %e,
                        "a connection dropped before the lease was taken; starting over"
                    );
                }
                r => return r,
            }
        }
    }

    /// Plans from the first read without the lease; when there is work, fixes the goal (a
    /// count becomes the version it reaches now) and takes the lease on a connection of its
    /// own (the heartbeat must not land inside a migration's transaction).
    async fn attempt_plan_and_lease(
        &mut self,
        set: &[Migration],
        ready: Ready,
    ) -> Result<Option<Leased>> {
        let Ready { session, first } = ready;
        let FirstRead { ledger, present } = first?;
        self.progress.at(ledger.current());
        let first = self.plan(set, &ledger.rows);
        if first.as_ref().is_ok_and(|p| !p.steps.is_empty()) {
            foreign::check(&self.config, &session.client, &ledger.rows, present).await?;
        }
        match first {
            Ok(first) if first.steps.is_empty() => {
                tracing::info!(
                    event = events::RUN_NOTHING_TO_DO,
                    current = first.current,
                    target = first.target,
                    "nothing to do"
                );
                self.keep(session, None);
                return Ok(None);
            }
            Ok(_) => {}
            // A dirty row seen without the lease may be a peer's no-transaction migration in
            // progress: only what the ledger says under the lease is final.
            Err(Error::Disagreement(_)) if ledger.rows.iter().any(|r| r.dirty) => {}
            Err(e) => return Err(e),
        }
        self.goal = self.goal.fixed(&ledger.rows)?;
        // The lease's connection opens only now that there is work: a run with nothing to do
        // stays one connection (opening a backend costs the server more than the round trip
        // it would save).
        let spare = self.spare_side.lock().ok().and_then(|mut s| s.take());
        let reused = spare.zip(self.tenant.as_ref());
        let (lease, reread) =
            lease::take_lease_on(&self.config, &self.tables, &self.stop, reused).await?;
        Ok(Some(Leased {
            session,
            lease,
            reread,
        }))
    }

    /// Apply under the lease, and recover: when the migration connection drops, reconnect and
    /// go on from what the ledger says (a step's row commits with it). `leased.session` ends as
    /// the last migration connection, for the release to fall back on.
    async fn apply_recovering(&self, leased: &mut Leased, set: &[Migration]) -> Result<()> {
        let Leased {
            session,
            lease,
            reread,
        } = leased;
        let (mut reconnects, mut in_flight) = (0u32, None);
        loop {
            let guard = self.stop.guard();
            guard.working(Some(session.client.cancel_token()));
            let mut pid = None;
            let reread = std::mem::replace(reread, Reread::ReadAgain);
            let result = match self.prepare(session, lease, reread).await {
                Ok(prepared) => {
                    pid = Some(prepared.pid);
                    self.apply(session, set, lease, prepared, &mut in_flight)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if e.is_connection_lost()
                        && reconnects < MAX_RECONNECTS
                        && !self.stop.is_cancelled() =>
                {
                    reconnects += 1;
                    let old = (session.client.cancel_token(), pid);
                    *session = self.recover(lease, old, reconnects, e).await?;
                }
                r => return r,
            }
        }
    }

    /// Settles the step a lost connection cut (`in_flight`), re-plans from the ledger under the
    /// lease and applies the plan; `in_flight` ends as the step this one cuts, if any.
    async fn apply(
        &self,
        session: &Session,
        set: &[Migration],
        lease: &Lease,
        prepared: Prepared<'_>,
        in_flight: &mut Option<InFlight>,
    ) -> Result<()> {
        let Prepared {
            pid,
            rows,
            applier,
            drift,
        } = prepared;
        self.settle(session, &rows, &applier, in_flight).await?;
        let plan = self.plan(set, &rows)?;
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
        let on = (&session.client, &session.info, &self.tables);
        drift::check(&self.drift, &self.config, on, drift, plan.current).await?;
        let flavour = session.info.flavour;
        if flavour == Flavour::CockroachDB {
            let tables = jobs::words_of_steps(&plan);
            let (client, timeout) = (&session.client, self.config.job_wait_timeout);
            jobs::at_start(client, &tables, timeout, self.stop.token()).await?;
        }
        let applier = applier
            .with_progress(flavour, pid.pid, self.config.progress_interval)
            .with_settings(apply::Settings::new(&self.config, flavour));
        let result = applier.run(&plan, &self.progress).await;
        *in_flight = InFlight::cut(&plan, &applier, &result);
        if result.is_ok() {
            self.drift.reached(plan.target);
        }
        let result = unless_fenced_off(lease, result).await;
        self.progress.at(match result {
            Ok(()) => plan.target,
            Err(_) => status::current_after(&rows, &plan, &self.progress.snapshot().versions),
        });
        result
    }

    /// The plan to the goal from `rows`.
    fn plan<'s>(&self, set: &'s [Migration], rows: &[AppliedRow]) -> Result<Plan<'s>> {
        let allow = Allow {
            newer_schema: self.config.allow_newer_schema,
            out_of_order: self.config.allow_out_of_order,
        };
        let plan = self.goal.plan(set, rows, allow, self.config.phase)?;
        self.progress.waiting(plan.contract_waiting());
        Ok(plan)
    }

    /// What the run would do, without the lease and without doing it (`plan`).
    pub(crate) async fn preview<'s>(&self, set: &'s [Migration]) -> Result<Plan<'s>> {
        let Ready { session, first } = self.connect().await?;
        let FirstRead { ledger, present } = first?;
        let plan = self.plan(set, &ledger.rows)?;
        if !plan.steps.is_empty() {
            foreign::check(&self.config, &session.client, &ledger.rows, present).await?;
        }
        Ok(plan)
    }
}

//! The facade: the library's operations (create, load, migrate, rollback, current version,
//! applied rows) and the rest of the commands. `migrate` and `rollback` are each one [`Run`];
//! the others wire config → source → connect → store → plan → session themselves. `main.rs`
//! maps their errors to exit codes; library callers use them directly.

use std::path::PathBuf;

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connect::{self, DbUrl, Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::jobs;
use crate::lint::Warning;
use crate::log::events;
use crate::plan::{Allow, Goal, Plan, Rollback};
use crate::repair::Repair;
use crate::report::{Progress, Report};
use crate::run::{self, Run, Stop};
use crate::session::Lease;
use crate::snapshot::Snapshot;
use crate::source::{self, Migration};
use crate::status::{self, Status};
use crate::store::Tables;
use crate::store::lease::{self, LeaseInfo};
use crate::store::ledger::{self, AppliedRow};
use crate::undo_test::{self, UndoReport};

/// The files as `status` takes them: the loaded set, and why it did not load (then empty).
pub(crate) type StatusFiles = (Vec<Migration>, Vec<String>);

/// Runs migration operations with one configuration.
pub struct Migrator {
    config: Config,
    tables: Tables,
    stop: Stop,
    progress: Progress,
}

impl Migrator {
    /// A migrator for `config`.
    pub fn new(config: Config) -> Migrator {
        let tables = Tables::new(&config.table).scoped(config.database_url());
        Migrator {
            config,
            tables,
            stop: Stop::default(),
            progress: Progress::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Cancelling this token asks a running operation to start nothing new (SIGTERM): waits
    /// for the database, the lease or a version wake up and end with [`Error::Terminated`].
    pub fn cancel_token(&self) -> CancellationToken {
        self.stop.token().clone()
    }

    /// The handle that stops this migrator's operations, and the runs it starts.
    pub fn stop(&self) -> Stop {
        self.stop.clone()
    }

    /// The run towards `goal` with this migrator's settings, [`Stop`] and progress: take it
    /// with [`Run::run`]. `migrate` and `rollback` are this. Runs of one migrator share its
    /// stop handle and progress: for runs side by side, build each with [`Run::new`].
    pub fn new_run(&self, goal: Goal) -> Run {
        Run::with(
            self.config.clone(),
            goal,
            self.stop.clone(),
            self.progress.clone(),
        )
    }

    /// What the current (or last) migrate or rollback did so far: kept when it fails, and when
    /// its future is dropped. (A [`Run`] returns the same report in its [`crate::Outcome`].)
    pub fn progress(&self) -> Report {
        self.progress.snapshot()
    }

    /// A migration connection is working under the lease (the SIGTERM grace applies).
    pub fn is_working(&self) -> bool {
        self.stop.is_working()
    }

    /// Loads the migration set; every problem is reported at once. A directory in another
    /// tool's layout is one error naming the tool and the `import` command.
    pub fn load(&self) -> Result<Vec<Migration>> {
        run::loading(&self.config)?.finish().map_err(Error::Source)
    }

    /// Converts another tool's migration directory `src` into this format in `into` (default:
    /// `MIGRATIONS_DIR`), never overwriting; one entry per file written.
    pub fn import(
        &self,
        tool: crate::import::Tool,
        src: &std::path::Path,
        into: Option<&std::path::Path>,
        dialect: Option<&str>,
    ) -> Result<Vec<crate::import::Imported>> {
        let into = into.unwrap_or(&self.config.migrations_dir);
        crate::import::import(tool, src, into, dialect).map_err(Error::Import)
    }

    /// Writes a new migration file `<UTC timestamp>_<slug>.sql` and returns its path. A clash
    /// takes the next free second; nothing is ever overwritten.
    pub fn create(
        &self,
        description: &str,
        up: Option<&str>,
        undo: Option<&str>,
    ) -> Result<PathBuf> {
        crate::create::create(&self.config.migrations_dir, description, up, undo)
    }

    /// Checks the directory offline: problems are an error (exit 20), lint findings warnings.
    /// Without `ENVIRONMENT`, every environment sub-directory is checked merged with the
    /// common files too, so CI catches what any environment's pod would refuse. Linear in the
    /// number of files.
    pub fn verify(&self) -> Result<(Vec<Migration>, Vec<Warning>)> {
        let dir = &self.config.migrations_dir;
        run::foreign_layout(dir)?;
        let environment = self.config.environment.as_deref();
        let set = source::load_all_environments(dir, environment).map_err(Error::Source)?;
        let warnings = crate::lint::lint_all(&set);
        Ok((set, warnings))
    }

    /// The lint's warnings for `set` (as [`Migrator::load`] returns it), in the order
    /// `verify` gives them.
    pub fn lint(set: &[Migration]) -> Vec<Warning> {
        crate::lint::lint_all(set)
    }

    fn allow(&self) -> Allow {
        Allow {
            newer_schema: self.config.allow_newer_schema,
            out_of_order: self.config.allow_out_of_order,
        }
    }

    /// DATABASE_URL, parsed (and its certificate files read) once per migrator.
    pub(crate) fn url(&self) -> Result<&DbUrl> {
        self.stop.url(&self.config)
    }

    /// Waits for the database and connects (exit 10/20/21 on failure).
    pub async fn connect(&self) -> Result<(Client, ServerInfo)> {
        let url = self.url()?;
        connect::wait_and_connect(url, self.config.wait_timeout, self.config.create_database).await
    }

    /// The live schema in its canonical form, without our ledger and lease tables.
    pub async fn schema(&self) -> Result<Snapshot> {
        let (client, info) = self.connect().await?;
        Snapshot::read(&client, &info, &self.tables).await
    }

    /// `test`: the undo round trip of every migration on this (scratch) database, one verdict
    /// per migration; refuses a database that holds anything but our ledger unless `force`.
    /// The ledger is not written.
    pub async fn test_undos_report(&self, force: bool) -> Result<UndoReport> {
        let set = self.load()?;
        let (client, info) = self.connect().await?;
        undo_test::run(&client, &info, &self.tables, &set, force).await
    }

    /// Reads the ledger's rows.
    pub async fn applied(&self) -> Result<Vec<AppliedRow>> {
        let (client, _) = self.connect().await?;
        let tables = self.tables.clone().with_undo(true);
        Ok(ledger::read(&client, &tables).await?.rows)
    }

    /// The newest applied version (0 when none).
    pub async fn current_version(&self) -> Result<i64> {
        let (client, _) = self.connect().await?;
        Ok(ledger::read(&client, &self.tables).await?.current())
    }

    /// Whether `version` is applied (and not dirty).
    pub async fn is_applied(&self, version: i64) -> Result<bool> {
        Ok(self
            .applied()
            .await?
            .iter()
            .any(|r| r.version == version && !r.dirty))
    }

    /// Applies pending migrations up to `target` (default: the configured target, else the
    /// newest file); returns how many.
    pub async fn migrate(&self, target: Option<i64>) -> Result<usize> {
        Ok(self.migrate_report(target).await?.count())
    }

    /// Undoes migrations; returns how many.
    pub async fn rollback(&self, how: Rollback) -> Result<usize> {
        Ok(self.rollback_report(how).await?.count())
    }

    /// `migrate`, returning what it did. On failure, [`Migrator::progress`] says what was
    /// applied before it ([`Run::run`] returns both).
    pub async fn migrate_report(&self, target: Option<i64>) -> Result<Report> {
        let goal = Goal::Up(target.or(self.config.target_version));
        self.new_run(goal).run().await.into_result()
    }

    /// `rollback`, returning what it did. On failure, [`Migrator::progress`] says what was
    /// undone before it ([`Run::run`] returns both).
    pub async fn rollback_report(&self, how: Rollback) -> Result<Report> {
        self.new_run(how.into()).run().await.into_result()
    }

    /// Releases a lease left held when the work was abandoned (SIGTERM past the grace
    /// budget), after cancelling the statement it was running. Call only after the work's
    /// future was dropped.
    pub async fn release_abandoned(&self) {
        self.stop.release_abandoned().await;
    }

    /// The `status` report. Problems in the files do not hide the database's state: they are
    /// listed in the report (`file_problems`) beside it.
    pub async fn status(&self) -> Result<Status> {
        let files = self.status_files()?;
        let (client, info) = self.connect().await?;
        self.status_on(&client, &info, &files).await
    }

    /// The files as `status` takes them: the set, or none and why they did not load.
    pub(crate) fn status_files(&self) -> Result<StatusFiles> {
        match self.load() {
            Ok(set) => Ok((set, Vec::new())),
            Err(Error::Source(problems)) => {
                Ok((Vec::new(), problems.iter().map(|p| p.to_string()).collect()))
            }
            Err(Error::ForeignLayout(hint)) => Ok((Vec::new(), vec![hint])),
            Err(e) => Err(e),
        }
    }

    /// The `status` report read on `client`, with `files` from [`Migrator::status_files`].
    pub(crate) async fn status_on(
        &self,
        client: &Client,
        info: &ServerInfo,
        (set, problems): &StatusFiles,
    ) -> Result<Status> {
        let ledger = ledger::read(client, &self.tables).await?;
        let lease = lease::show(client, &self.tables).await?;
        let mut s = status::status_of(set, &ledger, self.allow(), lease);
        if info.flavour == Flavour::CockroachDB {
            s.jobs = jobs::find(client).await?;
        }
        if !problems.is_empty() {
            // Without a loadable set, nothing is known to be pending, missing or drifted.
            s.missing_files.clear();
            s.disagreements.clear();
            s.file_problems = problems.clone();
        }
        // Hand changes since the last run that did work: independent of the files.
        let drift = crate::run::drift_of(client, info, &self.tables, s.current_version).await?;
        s.disagreements.extend(drift);
        Ok(s)
    }

    /// What `migrate` to `target` (default: the configured target, else the newest file)
    /// would do, without doing it.
    pub async fn plan<'s>(&self, set: &'s [Migration], target: Option<i64>) -> Result<Plan<'s>> {
        let goal = Goal::Up(target.or(self.config.target_version));
        self.new_run(goal).preview(set).await
    }

    /// Records files as applied without running them (every file up to V, or what another
    /// tool's history table says), under the lease; returns the versions recorded.
    pub async fn baseline(&self, how: crate::Baseline) -> Result<Vec<i64>> {
        let dir = &self.config.migrations_dir;
        self.under_lease(async |client, tables, set, lease| {
            crate::baseline::baseline(client, tables, dir, set, how, lease).await
        })
        .await
    }

    /// Waits without the lease until every file up to `version` is applied and the ledger has
    /// reached `version` (exit 11 at `MIGRATE_WAIT_TIMEOUT`).
    pub async fn wait_for(&self, version: i64) -> Result<()> {
        let set = self.load()?;
        let url = self.url()?;
        crate::wait::wait_for(
            url,
            &self.tables,
            &set,
            version,
            self.config.wait_timeout,
            self.stop.token(),
        )
        .await
    }

    /// Resolves a dirty mark or accepts an edited file, under the lease.
    pub async fn repair(&self, version: i64, action: Repair) -> Result<()> {
        self.under_lease(async |client, tables, set, lease| {
            crate::repair::repair(client, tables, set, version, action, lease).await
        })
        .await
    }

    /// Loads the files, connects, takes the lease and does `work` under it, then releases the
    /// lease (on every path; the SIGTERM path through the [`Stop`]).
    async fn under_lease<T>(
        &self,
        work: impl AsyncFnOnce(&Client, &Tables, &[Migration], &Lease) -> Result<T>,
    ) -> Result<T> {
        let set = self.load()?;
        let (client, _) = self.connect().await?;
        let (lease, _) = run::take_lease(&self.config, &self.tables, &self.stop).await?;
        let guard = self.stop.guard();
        guard.hold(&lease);
        guard.working(Some(client.cancel_token()));
        let result = work(&client, &self.tables, &set, &lease).await;
        drop(lease);
        guard.release(Some(&client)).await;
        result
    }

    /// Shows the lease; with `force`, releases it whoever holds it.
    pub async fn unlock(&self, force: bool) -> Result<Option<LeaseInfo>> {
        let (client, _) = self.connect().await?;
        if !force {
            return lease::show(&client, &self.tables).await;
        }
        let before = lease::force_release(&client, &self.tables).await?;
        tracing::warn!(
            event = events::LEASE_RELEASED,
            forced = true,
            holder = before.as_ref().and_then(|l| l.holder.as_deref()).unwrap_or(""),
            fence = before.as_ref().map(|l| l.fence).unwrap_or(0),
            by = %self.config.holder,
            "lease released by force"
        );
        Ok(before)
    }
}

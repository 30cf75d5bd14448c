//! The facade: the seed guide's operations (create, load, migrate, rollback, current version,
//! applied rows) and the rest of the commands, each wiring config → source → connect → store →
//! plan → session → apply. `main.rs` maps their errors to exit codes; library callers use them
//! directly.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connect::{self, DbUrl, Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::jobs;
use crate::lint::Warning;
use crate::log::events;
use crate::plan::{self, Allow, Plan, Rollback};
use crate::repair::Repair;
use crate::report::{Progress, Report};
use crate::session::Guard;
use crate::source::{self, Migration};
use crate::status::{self, Status};
use crate::store::Tables;
use crate::store::lease::{self, LeaseInfo};
use crate::store::ledger::{self, AppliedRow};

/// Runs migration operations with one configuration.
pub struct Migrator {
    pub(crate) config: Config,
    pub(crate) tables: Tables,
    url: OnceLock<DbUrl>,
    pub(crate) cancel: CancellationToken,
    pub(crate) guard: Arc<Guard>,
    pub(crate) progress: Progress,
}

impl Migrator {
    /// A migrator for `config`.
    pub fn new(config: Config) -> Migrator {
        let tables = Tables::new(&config.table);
        Migrator {
            config,
            tables,
            url: OnceLock::new(),
            cancel: CancellationToken::new(),
            guard: Arc::new(Guard::default()),
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
        self.cancel.clone()
    }

    /// What the current (or last) migrate or rollback did so far: kept when it fails, and when
    /// its future is dropped.
    pub fn progress(&self) -> Report {
        self.progress.snapshot()
    }

    /// A migration connection is working under the lease (the SIGTERM grace applies).
    pub fn is_working(&self) -> bool {
        self.guard.is_working()
    }

    /// Loads the migration set; every problem is reported at once. A directory in another
    /// tool's layout is one error naming the tool and the `import` command.
    pub fn load(&self) -> Result<Vec<Migration>> {
        self.loading()?.finish().map_err(Error::Source)
    }

    /// [`Migrator::load`] begun: the layout check and the directory listing, the files to be
    /// read by the caller, a few at a time if it likes.
    pub(crate) fn loading(&self) -> Result<source::Loading> {
        let dir = &self.config.migrations_dir;
        foreign_layout(dir)?;
        source::Loading::new(dir, self.config.environment.as_deref()).map_err(Error::Source)
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
    pub fn verify(&self) -> Result<(Vec<Migration>, Vec<Warning>)> {
        foreign_layout(&self.config.migrations_dir)?;
        crate::verify::verify(
            &self.config.migrations_dir,
            self.config.environment.as_deref(),
        )
    }

    /// The lint's warnings for `set` (as [`Migrator::load`] returns it), in the order
    /// `verify` gives them.
    pub fn lint(set: &[Migration]) -> Vec<Warning> {
        crate::lint::lint_all(set)
    }

    pub(crate) fn allow(&self) -> Allow {
        Allow {
            newer_schema: self.config.allow_newer_schema,
            out_of_order: self.config.allow_out_of_order,
        }
    }

    /// DATABASE_URL, parsed (and its certificate files read) once per migrator.
    pub(crate) fn url(&self) -> Result<&DbUrl> {
        if let Some(u) = self.url.get() {
            return Ok(u);
        }
        let parsed = DbUrl::from_setting(self.config.database_url())?;
        Ok(self.url.get_or_init(|| parsed))
    }

    /// Waits for the database and connects (exit 10/20/21 on failure).
    pub async fn connect(&self) -> Result<(Client, ServerInfo)> {
        let url = self.url()?;
        connect::wait_and_connect(url, self.config.wait_timeout, self.config.create_database).await
    }

    /// Reads the ledger's rows.
    pub async fn applied(&self) -> Result<Vec<AppliedRow>> {
        let (client, _) = self.connect().await?;
        Ok(ledger::read(&client, &self.tables).await?.rows)
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
    /// applied before it.
    pub async fn migrate_report(&self, target: Option<i64>) -> Result<Report> {
        self.progress.reset();
        let (set, connected) = self.load_connected().await?;
        let target = target.or(self.config.target_version);
        self.run_locked(&set, connected, |set, rows| {
            let plan = plan::up(set, rows, target, self.allow())?.in_phase(self.config.phase);
            self.progress.waiting(plan.contract_waiting());
            Ok(plan)
        })
        .await?;
        Ok(self.progress.snapshot())
    }

    /// `rollback`, returning what it did. On failure, [`Migrator::progress`] says what was
    /// undone before it.
    pub async fn rollback_report(&self, how: Rollback) -> Result<Report> {
        self.progress.reset();
        let (set, connected) = self.load_connected().await?;
        // After a reconnect the plan is made again from the ledger: a count is what is left.
        self.run_locked(&set, connected, |set, rows| {
            let done = self.progress.snapshot().count();
            match how {
                Rollback::Count(n) if done > 0 && done >= n => {
                    let current = ledger::current(rows);
                    Ok(Plan {
                        current,
                        target: current,
                        steps: Vec::new(),
                        phase: None,
                        held_back: Vec::new(),
                    })
                }
                Rollback::Count(n) if done > 0 => {
                    plan::down(set, rows, Rollback::Count(n - done), self.allow())
                }
                how => plan::down(set, rows, how, self.allow()),
            }
        })
        .await?;
        Ok(self.progress.snapshot())
    }

    /// Releases a lease left held when the work was abandoned (SIGTERM past the grace
    /// budget), after cancelling the statement it was running. Call only after the work's
    /// future was dropped.
    pub async fn release_abandoned(&self) {
        self.guard.abandon(self.url.get()).await;
    }

    /// The `status` report. Problems in the files do not hide the database's state: they are
    /// listed in the report (`file_problems`) beside it.
    pub async fn status(&self) -> Result<Status> {
        let (set, problems) = match self.load() {
            Ok(set) => (set, Vec::new()),
            Err(Error::Source(problems)) => {
                (Vec::new(), problems.iter().map(|p| p.to_string()).collect())
            }
            Err(Error::ForeignLayout(hint)) => (Vec::new(), vec![hint]),
            Err(e) => return Err(e),
        };
        let (client, info) = self.connect().await?;
        let ledger = ledger::read(&client, &self.tables).await?;
        let lease = lease::show(&client, &self.tables).await?;
        let mut s = status::status_of(&set, &ledger, self.allow(), lease);
        if info.flavour == Flavour::CockroachDB {
            s.jobs = jobs::find(&client).await?;
        }
        if !problems.is_empty() {
            // Without a loadable set, nothing is known to be pending, missing or drifted.
            s.missing_files.clear();
            s.disagreements.clear();
            s.file_problems = problems;
        }
        Ok(s)
    }

    /// What `migrate` (or with `rollback`, a rollback) would do, without doing it.
    pub async fn plan_with<'s>(
        &self,
        set: &'s [Migration],
        how: Option<Rollback>,
        target: Option<i64>,
    ) -> Result<Plan<'s>> {
        let (client, _) = self.connect().await?;
        let ledger = ledger::read(&client, &self.tables).await?;
        match how {
            Some(how) => plan::down(set, &ledger.rows, how, self.allow()),
            None => {
                let plan = plan::up(
                    set,
                    &ledger.rows,
                    target.or(self.config.target_version),
                    self.allow(),
                )?
                .in_phase(self.config.phase);
                if !plan.steps.is_empty() {
                    self.check_foreign_history(&client, &ledger.rows, None)
                        .await?;
                }
                Ok(plan)
            }
        }
    }

    /// Refuses (exit 32) to start a ledger on a database another tool manages: our ledger is
    /// empty and a known tool's history table has rows (`MIGRATE_IGNORE_FOREIGN_HISTORY` lets
    /// it pass).
    pub(crate) async fn check_foreign_history(
        &self,
        client: &Client,
        rows: &[AppliedRow],
        present: Option<&[String]>,
    ) -> Result<()> {
        if !rows.is_empty() || self.config.ignore_foreign_history {
            return Ok(());
        }
        let found = crate::import::probe::foreign_history(client, present).await;
        let found = found.map_err(|e| Error::db("looking for another tool's history table", e))?;
        match found {
            Some((tool, table, rows)) => Err(Error::Disagreement(vec![
                crate::refusal::Disagreement::ForeignHistory {
                    tool: tool.to_string(),
                    table,
                    rows,
                },
            ])),
            None => Ok(()),
        }
    }

    /// Records files as applied without running them (every file up to V, or what another
    /// tool's history table says), under the lease; returns the versions recorded.
    pub async fn baseline(&self, how: crate::Baseline) -> Result<Vec<i64>> {
        let set = self.load()?;
        let (client, _) = self.connect().await?;
        let lease = self.take_lease().await?;
        self.guard.hold(&lease);
        self.guard.working(Some(client.cancel_token()));
        let result = crate::baseline::baseline(
            &client,
            &self.tables,
            &self.config.migrations_dir,
            &set,
            how,
            &lease,
        )
        .await;
        drop(lease);
        self.guard.release(Some(&client)).await;
        result
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
            &self.cancel,
        )
        .await
    }

    /// Resolves a dirty mark or accepts an edited file, under the lease.
    pub async fn repair(&self, version: i64, action: Repair) -> Result<()> {
        let set = self.load()?;
        let (client, _) = self.connect().await?;
        let lease = self.take_lease().await?;
        self.guard.hold(&lease);
        self.guard.working(Some(client.cancel_token()));
        let result =
            crate::repair::repair(&client, &self.tables, &set, version, action, &lease).await;
        drop(lease);
        self.guard.release(Some(&client)).await;
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

/// The error for a migrations directory in another tool's layout, whether its files failed to
/// load (golang-migrate, Flyway, pop), loaded as nothing (Diesel's sub-directories) or loaded
/// with another tool's markers in them (goose, dbmate).
fn foreign_layout(dir: &std::path::Path) -> Result<()> {
    match crate::import::probe::layout_hint(dir) {
        Some(hint) => Err(Error::ForeignLayout(hint)),
        None => Ok(()),
    }
}

//! The operations a run or a library caller performs — migrate, rollback, status, plan, wait,
//! repair, unlock, create, verify — each wiring config → source → connect → ledger → plan →
//! lease → apply. `main.rs` maps their errors to exit codes; library callers use them directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::apply::Applier;
use crate::config::Config;
use crate::connect::{self, ServerInfo};
use crate::error::{Error, Result};
use crate::flavour;
use crate::lease::{self, Lease, LeaseInfo};
use crate::ledger::{self, AppliedRow, Ledger, Tables};
use crate::lint::{self, Warning};
use crate::log::events;
use crate::plan::{self, Allow, Direction, Plan, Rollback};
use crate::source::{self, Migration};

/// What a run did, kept even when it fails part-way.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Versions applied (migrate) or undone (rollback), in order.
    pub versions: Vec<i64>,
    /// The newest applied version at the end, when known.
    pub current: Option<i64>,
}

impl Report {
    /// How many migrations were applied or undone.
    pub fn count(&self) -> usize {
        self.versions.len()
    }
}

/// A repair action (`repair --version V ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// The change is in place: record the migration as applied.
    MarkApplied,
    /// Nothing of it remains: remove its row.
    MarkNotApplied,
    /// The file was edited on purpose: record its new checksum.
    AcceptChecksum,
}

/// One migration as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    /// Version.
    pub version: i64,
    /// Description.
    pub description: String,
    /// `applied`, `dirty` or `pending`.
    pub state: &'static str,
    /// When applied (RFC 3339), for applied and dirty rows.
    pub applied_at: Option<String>,
    /// `true`/`false` when both a file and a recorded checksum exist, else `null`.
    pub checksum_matches: Option<bool>,
    /// Who applied it.
    pub applied_by: Option<String>,
    /// The file, when this image has one.
    pub file: Option<PathBuf>,
}

/// The `status` report (the stable JSON of `status --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The newest applied version (0 when none).
    pub current_version: i64,
    /// Every applied or dirty migration and every pending file, by version.
    pub migrations: Vec<StatusRow>,
    /// Pending versions.
    pub pending: Vec<i64>,
    /// Dirty versions.
    pub dirty: Vec<i64>,
    /// Versions applied in the database but without a file in this image.
    pub missing_files: Vec<i64>,
    /// Where the database and the files disagree (what `migrate` would refuse with exit 32).
    pub disagreements: Vec<String>,
    /// The lease, when the table exists.
    pub lease: Option<LeaseInfo>,
}

/// Runs migration operations with one configuration.
pub struct Migrator {
    config: Config,
    tables: Tables,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Option<Lease>>>,
    /// Cancels what the migration connection is running, for [`Migrator::release_abandoned`].
    in_flight: Arc<std::sync::Mutex<Option<tokio_postgres::CancelToken>>>,
}

fn rfc3339(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

impl Migrator {
    /// A migrator for `config`.
    pub fn new(config: Config) -> Migrator {
        let tables = Tables::new(&config.table);
        Migrator {
            config,
            tables,
            stop: Arc::new(AtomicBool::new(false)),
            held: Arc::new(Mutex::new(None)),
            in_flight: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The flag that asks a running operation to start nothing new (set on SIGTERM).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Loads the migration set; every problem is reported at once.
    pub fn load(&self) -> Result<Vec<Migration>> {
        source::load(
            &self.config.migrations_dir,
            self.config.environment.as_deref(),
        )
        .map_err(Error::Source)
    }

    /// Writes a new migration file `<UTC timestamp>_<slug>.sql` and returns its path. A clash
    /// takes the next free second; nothing is ever overwritten.
    pub fn create(
        &self,
        description: &str,
        up: Option<&str>,
        undo: Option<&str>,
    ) -> Result<PathBuf> {
        let slug = source::slugify(description).ok_or_else(|| Error::Config {
            name: "DESCRIPTION".into(),
            message: format!("{description:?} has no letters or digits to name the file with"),
        })?;
        let dir = &self.config.migrations_dir;
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        // Versions are unique across the common files and every environment directory.
        let mut taken = std::collections::BTreeSet::new();
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| Error::Io {
                path: d.clone(),
                message: e.to_string(),
            })?;
            for e in entries.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if d == *dir && !name.starts_with('.') && e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                } else if let Ok((v, _)) = source::parse_name(&name) {
                    taken.insert(v);
                }
            }
        }
        let mut now = time::OffsetDateTime::now_utc();
        let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
        let body = source::render(up.unwrap_or(""), Some(undo.unwrap_or("")));
        for _ in 0..3600 {
            let stamp = now.format(&format).map_err(|e| Error::Config {
                name: "clock".into(),
                message: e.to_string(),
            })?;
            let version: i64 = stamp.parse().unwrap_or(0);
            if !taken.contains(&version) {
                let path = dir.join(source::file_name(version, &slug));
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path);
                match file {
                    Ok(mut f) => {
                        use std::io::Write;
                        f.write_all(body.as_bytes()).map_err(|e| Error::Io {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                        return Ok(path);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::Io {
                            path,
                            message: e.to_string(),
                        });
                    }
                }
            }
            now += time::Duration::SECOND;
        }
        Err(Error::Io {
            path: dir.clone(),
            message: "no free version within the next hour".into(),
        })
    }

    /// Checks the directory offline: problems are an error (exit 20), lint findings warnings.
    ///
    /// Without `ENVIRONMENT`, every environment sub-directory is checked merged with the
    /// common files too, so CI catches what a production pod would refuse.
    pub fn verify(&self) -> Result<(Vec<Migration>, Vec<Warning>)> {
        let dir = &self.config.migrations_dir;
        let mut environments: Vec<Option<String>> = vec![self.config.environment.clone()];
        if self.config.environment.is_none()
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut subs: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect();
            subs.sort();
            environments.extend(subs.into_iter().map(Some));
        }
        let mut set: Vec<Migration> = Vec::new();
        let mut problems: Vec<source::Problem> = Vec::new();
        for env in &environments {
            match source::load(dir, env.as_deref()) {
                Ok(loaded) => {
                    for m in loaded {
                        if !set.iter().any(|s| s.path == m.path) {
                            set.push(m);
                        }
                    }
                }
                Err(found) => {
                    for p in found {
                        if !problems.contains(&p) {
                            problems.push(p);
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Source(problems));
        }
        set.sort_by(|a, b| (a.version, &a.path).cmp(&(b.version, &b.path)));
        let warnings = set.iter().flat_map(lint::lint).collect();
        Ok((set, warnings))
    }

    fn allow(&self) -> Allow {
        Allow {
            newer_schema: self.config.allow_newer_schema,
            out_of_order: self.config.allow_out_of_order,
        }
    }

    /// Waits for the database and connects (exit 10/20/21 on failure).
    pub async fn connect(&self) -> Result<(Client, ServerInfo)> {
        let url = self.config.database_url()?;
        Ok(
            connect::wait_and_connect(&url, self.config.wait_timeout, self.config.create_database)
                .await?,
        )
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

    /// Applies pending migrations up to `target` (default: the newest file); returns how many.
    pub async fn migrate(&self, target: Option<i64>) -> Result<usize> {
        let mut report = Report::default();
        self.migrate_into(target, &mut report).await?;
        Ok(report.count())
    }

    /// Undoes migrations; returns how many.
    pub async fn rollback(&self, how: Rollback) -> Result<usize> {
        let mut report = Report::default();
        self.rollback_into(how, &mut report).await?;
        Ok(report.count())
    }

    /// `migrate`, recording progress in `report` even when it fails.
    pub async fn migrate_into(&self, target: Option<i64>, report: &mut Report) -> Result<()> {
        let set = self.load()?;
        let target = target.or(self.config.target_version);
        self.run_locked(&set, report, |set, rows| {
            plan::up(set, rows, target, self.allow())
        })
        .await
    }

    /// `rollback`, recording progress in `report` even when it fails.
    pub async fn rollback_into(&self, how: Rollback, report: &mut Report) -> Result<()> {
        let set = self.load()?;
        self.run_locked(&set, report, |set, rows| {
            plan::down(set, rows, how, self.allow())
        })
        .await
    }

    /// Plans from the ledger without the lease; when there is work, takes the lease, re-reads
    /// the ledger (a peer may have done it), re-plans and applies.
    async fn run_locked<'s, F>(
        &self,
        set: &'s [Migration],
        report: &mut Report,
        make_plan: F,
    ) -> Result<()>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        let (client, info) = self.connect().await?;
        let ledger = ledger::read(&client, &self.tables).await?;
        report.current = Some(ledger.current());
        match make_plan(set, &ledger.rows) {
            Ok(first) if first.steps.is_empty() => {
                tracing::info!(
                    event = "run.nothing_to_do",
                    current = first.current,
                    target = first.target,
                    "nothing to do"
                );
                return Ok(());
            }
            Ok(_) => {}
            // A dirty row seen without the lease may be a peer's no-transaction migration in
            // progress: only what the ledger says under the lease is final.
            Err(Error::Disagreement(_)) if ledger.rows.iter().any(|r| r.dirty) => {}
            Err(e) => return Err(e),
        }
        let lease = self.take_lease(&client).await?;
        let release = lease.releaser();
        *self.held.lock().await = Some(lease);
        self.set_in_flight(Some(client.cancel_token()));
        let result = self
            .apply_under_lease(&client, &info, set, report, &make_plan)
            .await;
        self.set_in_flight(None);
        drop(client);
        self.held.lock().await.take();
        release.release().await;
        result
    }

    /// A migration connection is working under the lease (the SIGTERM grace applies).
    pub fn is_working(&self) -> bool {
        self.in_flight.lock().map(|t| t.is_some()).unwrap_or(false)
    }

    fn set_in_flight(&self, token: Option<tokio_postgres::CancelToken>) {
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = token;
        }
    }

    async fn apply_under_lease<'s, F>(
        &self,
        client: &Client,
        info: &ServerInfo,
        set: &'s [Migration],
        report: &mut Report,
        make_plan: &F,
    ) -> Result<()>
    where
        F: Fn(&'s [Migration], &[AppliedRow]) -> Result<Plan<'s>>,
    {
        let ledger = ledger::read_adopted(client, &self.tables).await?;
        let plan = make_plan(set, &ledger.rows)?;
        report.current = Some(ledger.current());
        if plan.steps.is_empty() {
            tracing::info!(
                event = "run.nothing_to_do",
                current = plan.current,
                target = plan.target,
                "a peer finished the work; nothing to do"
            );
            return Ok(());
        }
        flavour::prepare_session(
            client,
            info.flavour,
            self.config.statement_timeout,
            self.config.lease_ttl,
            self.config.environment.as_deref().unwrap_or(""),
        )
        .await?;
        let guard = self.held.lock().await;
        let Some(lease) = guard.as_ref() else {
            return Err(Error::LeaseLost {
                fence: 0,
                detail: "the lease was released before work began".into(),
            });
        };
        let applier = Applier::new(client, &self.tables, lease, &self.stop).await?;
        let result = match applier.run(&plan, &mut report.versions).await {
            Err(e) if may_be_fenced_off(&e) => Err(fenced_off_or(lease, e).await),
            r => r,
        };
        report.current = Some(match result {
            Ok(()) => plan.target,
            Err(_) => current_after(&ledger.rows, &plan, &report.versions),
        });
        result
    }

    /// Creates the tables if needed, then takes the lease on a connection of its own (the
    /// heartbeat must not land inside a migration's transaction).
    async fn take_lease(&self, client: &Client) -> Result<Lease> {
        self.ensure_tables(client).await?;
        let (lease_client, _) = self.connect().await?;
        lease::acquire(
            lease_client,
            &self.tables,
            &self.config.holder,
            self.config.lease_ttl,
            self.config.lease_timeout,
            &self.stop,
        )
        .await
    }

    /// Creates the tables if needed. Concurrent first runs race on `CREATE TABLE IF NOT
    /// EXISTS` (PostgreSQL can raise 23505/42P07, CockroachDB 40001): retried briefly.
    async fn ensure_tables(&self, client: &Client) -> Result<()> {
        let mut backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(500))
            .with_max_times(10)
            .build();
        let races = [
            SqlState::UNIQUE_VIOLATION.code(),
            SqlState::DUPLICATE_TABLE.code(),
            SqlState::T_R_SERIALIZATION_FAILURE.code(),
        ];
        loop {
            let err = match ledger::ensure(client, &self.tables).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let racing = matches!(&err, Error::Database { sqlstate: Some(c), .. } if races.contains(&c.as_str()));
            match backoff.next() {
                Some(delay) if racing => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(err),
            }
        }
    }

    /// Releases a lease left held when the work was abandoned (SIGTERM past the grace
    /// budget). Call only after the work's future was dropped.
    ///
    /// First cancels the statement the migration connection was running: dropping the client
    /// does not stop it, and the server would run it to its end (PostgreSQL notices a vanished
    /// client only when it next writes to it), holding the migration's locks, and the lease
    /// row's if the fenced ledger write had run, which would block our release and the next
    /// holder. The cancelled transaction rolls back.
    pub async fn release_abandoned(&self) {
        let token = self.in_flight.lock().ok().and_then(|mut t| t.take());
        if let Some(token) = token {
            let cancelled = match self.config.database_url() {
                Ok(url) => {
                    tokio::time::timeout(Duration::from_secs(5), connect::cancel(&url, &token))
                        .await
                        .map_err(|_| "no answer within 5s".to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                }
                Err(e) => Err(e.to_string()),
            };
            match cancelled {
                Ok(()) => tracing::warn!(
                    event = events::RUN_SIGNAL,
                    "cancelled the abandoned migration's statement; its transaction rolls back"
                ),
                Err(e) => tracing::warn!(
                    event = events::RUN_SIGNAL,
                    error = %e,
                    "could not cancel the abandoned migration's statement; the server ends it when it notices we are gone"
                ),
            }
        }
        if let Some(lease) = self.held.lock().await.take() {
            lease.releaser().release().await;
        }
    }

    /// The `status` report.
    pub async fn status(&self) -> Result<Status> {
        let set = self.load()?;
        let (client, _) = self.connect().await?;
        let ledger = ledger::read(&client, &self.tables).await?;
        let lease = lease::show(&client, &self.tables).await?;
        Ok(status_of(&set, &ledger, self.allow(), lease))
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
            None => plan::up(
                set,
                &ledger.rows,
                target.or(self.config.target_version),
                self.allow(),
            ),
        }
    }

    /// Waits without the lease until every file up to `version` is applied and the ledger has
    /// reached `version` (exit 11 at `MIGRATE_WAIT_TIMEOUT`).
    pub async fn wait_for(&self, version: i64) -> Result<()> {
        let started = Instant::now();
        let set = self.load()?;
        let url = self.config.database_url()?;
        let timeout = self.config.wait_timeout;
        let mut backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .without_max_times()
            .build();
        let mut client: Option<Client> = None;
        // Unknown until the ledger is read: every file up to the version, plus the version.
        let mut missing = missing_up_to(&set, &[], version);
        let mut current = 0;
        loop {
            if client.is_none() {
                let remaining = timeout.saturating_sub(started.elapsed());
                match connect::wait_and_connect(&url, remaining, false).await {
                    Ok((c, _)) => client = Some(c),
                    // The database is not created yet (blue-green: the Job creates it).
                    Err(connect::ConnectError::NoDatabase(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(c) = &client {
                match ledger::read(c, &self.tables).await {
                    Ok(ledger) => {
                        missing = missing_up_to(&set, &ledger.rows, version);
                        current = ledger.current();
                        if missing == 0 {
                            tracing::info!(
                                event = "wait.reached",
                                version,
                                current,
                                "version reached"
                            );
                            return Ok(());
                        }
                    }
                    // A node drained or restarted: reconnect within what is left of the wait.
                    Err(Error::Database {
                        connection_lost: true,
                        ..
                    }) => client = None,
                    Err(e) => return Err(e),
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(Error::Terminated);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::WaitTimeout {
                    version,
                    waited_ms: waited.as_millis(),
                    missing,
                });
            }
            let delay = backoff
                .next()
                .unwrap_or(Duration::from_secs(1))
                .min(timeout - waited);
            tracing::info!(
                event = "wait.polling",
                version,
                current,
                missing,
                connected = client.is_some(),
                delay_ms = delay.as_millis() as u64,
                "waiting for the version"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Resolves a dirty mark or accepts an edited file, under the lease.
    pub async fn repair(&self, version: i64, action: Repair) -> Result<()> {
        let set = self.load()?;
        let (client, _) = self.connect().await?;
        let lease = self.take_lease(&client).await?;
        let release = lease.releaser();
        self.set_in_flight(Some(client.cancel_token()));
        // Held where SIGTERM's abandon path finds it (see `release_abandoned`).
        let mut held = self.held.lock().await;
        let lease = held.insert(lease);
        let result = self
            .repair_under(&client, &set, version, action, lease)
            .await;
        drop(held);
        self.set_in_flight(None);
        self.held.lock().await.take();
        release.release().await;
        result
    }

    async fn repair_under(
        &self,
        client: &Client,
        set: &[Migration],
        version: i64,
        action: Repair,
        lease: &Lease,
    ) -> Result<()> {
        let ledger = ledger::read_adopted(client, &self.tables).await?;
        let row = ledger.rows.iter().find(|r| r.version == version);
        let file = set.iter().find(|m| m.version == version);
        let f = &lease.fence;
        let n = match action {
            Repair::MarkApplied => {
                let m = file.ok_or_else(|| {
                    Error::Refused(format!(
                        "version {version} has no migration file; cannot mark it applied"
                    ))
                })?;
                let args = ledger::RecordArgs {
                    migration: m,
                    duration_ms: row.and_then(|r| r.duration_ms),
                    fence: f,
                    status: "applied",
                    statements_done: row.map(|r| r.statements_done.max(0)).unwrap_or(0),
                };
                client
                    .execute(&ledger::record_sql(&self.tables), &args.params())
                    .await
            }
            Repair::MarkNotApplied => {
                if row.is_none() {
                    return Err(Error::Refused(format!(
                        "version {version} has no row in the ledger; nothing to mark"
                    )));
                }
                client
                    .execute(
                        &ledger::unrecord_sql(&self.tables),
                        &[&version, &f.holder, &f.token, &f.ttl_ms],
                    )
                    .await
            }
            Repair::AcceptChecksum => {
                let m = file.ok_or_else(|| {
                    Error::Refused(format!(
                        "version {version} has no migration file; no checksum to accept"
                    ))
                })?;
                if row.is_none() {
                    return Err(Error::Refused(format!(
                        "version {version} is not applied; nothing to accept"
                    )));
                }
                client
                    .execute(
                        &ledger::accept_checksum_sql(&self.tables),
                        &[&version, &m.checksum, &f.holder, &f.token, &f.ttl_ms],
                    )
                    .await
            }
        }
        .map_err(|e| Error::db(format!("repairing version {version}"), &e))?;
        if n != 1 {
            return Err(Error::LeaseLost {
                fence: f.token,
                detail: "the fence check during repair failed".into(),
            });
        }
        tracing::warn!(
            event = events::REPAIR,
            version,
            action = ?action,
            holder = %f.holder,
            fence = f.token,
            previous_status = row.map(|r| if r.dirty { "dirty" } else { "applied" }).unwrap_or("absent"),
            "repair applied"
        );
        Ok(())
    }

    /// Shows the lease; with `force`, releases it whoever holds it.
    pub async fn unlock(&self, force: bool) -> Result<Option<LeaseInfo>> {
        let (client, _) = self.connect().await?;
        if force {
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
        } else {
            lease::show(&client, &self.tables).await
        }
    }
}

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
            Error::LeaseLost {
                fence: lease.fence.token,
                detail: format!("the lease expired or was taken while working ({e})"),
            }
        }
        _ => e,
    }
}

fn current_after(rows: &[AppliedRow], plan: &Plan, done: &[i64]) -> i64 {
    let mut versions: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter(|r| !r.dirty)
        .map(|r| r.version)
        .collect();
    for s in &plan.steps {
        if done.contains(&s.migration.version) {
            match s.direction {
                Direction::Up => versions.insert(s.migration.version),
                Direction::Down => versions.remove(&s.migration.version),
            };
        }
    }
    versions.last().copied().unwrap_or(0)
}

/// How many files up to `version` are not applied, plus one when the ledger has not reached
/// `version` at all.
fn missing_up_to(set: &[Migration], rows: &[AppliedRow], version: i64) -> usize {
    if version <= 0 {
        return 0;
    }
    let applied = |v: i64| rows.iter().any(|r| r.version == v && !r.dirty);
    let files = set
        .iter()
        .filter(|m| m.version <= version && !applied(m.version))
        .count();
    let reached = rows.iter().any(|r| r.version >= version && !r.dirty);
    files + usize::from(!reached)
}

/// Builds the status report (pure).
pub fn status_of(
    set: &[Migration],
    ledger: &Ledger,
    allow: Allow,
    lease: Option<LeaseInfo>,
) -> Status {
    let mut migrations = Vec::new();
    let mut versions: std::collections::BTreeSet<i64> = set.iter().map(|m| m.version).collect();
    versions.extend(ledger.rows.iter().map(|r| r.version));
    let (mut pending, mut dirty, mut missing_files) = (Vec::new(), Vec::new(), Vec::new());
    for v in versions {
        let file = set.iter().find(|m| m.version == v);
        let row = ledger.rows.iter().find(|r| r.version == v);
        let state = match row {
            None => "pending",
            Some(r) if r.dirty => "dirty",
            Some(_) => "applied",
        };
        match state {
            "pending" => pending.push(v),
            "dirty" => dirty.push(v),
            _ => {}
        }
        if row.is_some() && file.is_none() {
            missing_files.push(v);
        }
        migrations.push(StatusRow {
            version: v,
            description: row
                .map(|r| r.description.clone())
                .or_else(|| file.map(|m| m.description.clone()))
                .unwrap_or_default(),
            state,
            applied_at: rfc3339(row.and_then(|r| r.applied_at)),
            checksum_matches: match (file, row.and_then(|r| r.checksum.as_ref())) {
                (Some(m), Some(sum)) => Some(&m.checksum == sum),
                _ => None,
            },
            applied_by: row.and_then(|r| r.applied_by.clone()),
            file: file.map(|m| m.path.clone()),
        });
    }
    Status {
        current_version: ledger.current(),
        migrations,
        pending,
        dirty,
        missing_files,
        disagreements: plan::disagreements(set, &ledger.rows, allow),
        lease,
    }
}

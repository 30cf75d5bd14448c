//! Executing a plan: each step one transaction holding the migration's SQL and its fenced
//! ledger write, replayed on SQLSTATE 40001 with jittered backoff, marked dirty when the
//! commit's outcome is unknown (XXA00, 40003); `@NO_TRANSACTION` steps run statement by
//! statement with a journal in `statements_done`, so a rerun resumes after the last one done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, SimpleQueryMessage, Statement};

use crate::error::{Error, Result, SqlFailure, is_connection_class};
use crate::lease::Lease;
use crate::ledger::{self, RecordArgs, Tables};
use crate::log::events;
use crate::plan::{Direction, Plan, Step};
use crate::source::Migration;

/// SQLSTATE XXA00: CockroachDB's "transaction committed but schema change aborted".
const SCHEMA_CHANGE_AFTER_COMMIT: &str = "XXA00";

/// Runs plans on one connection under a lease.
pub struct Applier<'a> {
    client: &'a Client,
    lease: &'a Lease,
    stop: &'a AtomicBool,
    record: Statement,
    unrecord: Statement,
    mark_dirty: Statement,
    max_retries: usize,
}

/// How one attempt at a transactional step ended, when it did not succeed.
enum Fail {
    /// SQLSTATE 40001: rolled back, replay.
    Retry,
    /// Anything else: stop.
    Stop(Error),
}

/// An outcome worth replaying (SQLSTATE 40001).
trait Replayable {
    fn is_retry(&self) -> bool;
}

impl Replayable for tokio_postgres::Error {
    fn is_retry(&self) -> bool {
        is_retry(self)
    }
}

impl Replayable for Fail {
    fn is_retry(&self) -> bool {
        matches!(self, Fail::Retry)
    }
}

/// How a replayed ledger write failed.
enum LedgerWriteError {
    /// 40001 on every attempt.
    Exhausted(Error),
    /// Any other error, at once.
    Db(tokio_postgres::Error),
}

impl LedgerWriteError {
    fn into_error(self, context: String) -> Error {
        match self {
            LedgerWriteError::Exhausted(e) => e,
            LedgerWriteError::Db(e) => Error::db(context, &e),
        }
    }
}

impl std::fmt::Display for LedgerWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerWriteError::Exhausted(e) => e.fmt(f),
            LedgerWriteError::Db(e) => e.fmt(f),
        }
    }
}

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

fn is_retry(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}

/// The migration's SQL failed: an error carrying the server's words.
fn sql_failed(m: &Migration, e: &tokio_postgres::Error) -> Error {
    if e.is_closed() || code(e).is_some_and(is_connection_class) {
        return Error::db(format!("migration {} ({})", m.version, m.path.display()), e);
    }
    match e.as_db_error() {
        Some(db) => Error::MigrationFailed(Box::new(SqlFailure {
            version: m.version,
            file: m.path.clone(),
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        })),
        None => Error::MigrationFailed(Box::new(SqlFailure {
            version: m.version,
            file: m.path.clone(),
            sqlstate: "-".into(),
            message: e.to_string(),
            detail: None,
            hint: None,
        })),
    }
}

fn excerpt(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        format!("{}...", one_line.chars().take(77).collect::<String>())
    } else {
        one_line
    }
}

fn affected(msgs: &[SimpleQueryMessage]) -> u64 {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => *n,
            _ => 0,
        })
        .sum()
}

impl<'a> Applier<'a> {
    /// Prepares the fenced ledger statements on `client` (the migration connection).
    pub async fn new(
        client: &'a Client,
        tables: &Tables,
        lease: &'a Lease,
        stop: &'a AtomicBool,
    ) -> Result<Applier<'a>> {
        let prep = |sql: String| async move {
            client
                .prepare(&sql)
                .await
                .map_err(|e| Error::db("preparing ledger statements", &e))
        };
        Ok(Applier {
            client,
            lease,
            stop,
            record: prep(ledger::record_sql(tables)).await?,
            unrecord: prep(ledger::unrecord_sql(tables)).await?,
            mark_dirty: prep(ledger::mark_dirty_sql(tables)).await?,
            max_retries: 9,
        })
    }

    /// Runs every step of `plan` in order, pushing each finished version onto `done` (so a
    /// failure still says what was applied). Stops before a step when a stop was requested.
    pub async fn run(&self, plan: &Plan<'_>, done: &mut Vec<i64>) -> Result<()> {
        for step in &plan.steps {
            if self.stop.load(Ordering::SeqCst) {
                return Err(Error::Terminated);
            }
            if self.lease.is_lost() {
                return Err(Error::LeaseLost {
                    fence: self.lease.fence.token,
                    detail: "the heartbeat found the lease expired or taken".into(),
                });
            }
            let m = step.migration;
            tracing::info!(
                event = events::MIGRATION_STARTED,
                version = m.version,
                description = %m.description,
                checksum = %m.checksum,
                direction = step.direction.as_str(),
                no_transaction = m.no_transaction,
                "migration started"
            );
            let started = Instant::now();
            let result = if m.no_transaction {
                self.step_no_transaction(step).await
            } else {
                self.step_transaction(step).await
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(()) => {
                    let event = match step.direction {
                        Direction::Up => events::MIGRATION_APPLIED,
                        Direction::Down => events::MIGRATION_ROLLED_BACK,
                    };
                    tracing::info!(
                        event,
                        version = m.version,
                        description = %m.description,
                        checksum = %m.checksum,
                        duration_ms,
                        "{}",
                        if step.direction == Direction::Up { "migration applied" } else { "migration rolled back" }
                    );
                    done.push(m.version);
                }
                Err(e) => {
                    tracing::error!(
                        event = events::MIGRATION_FAILED,
                        version = m.version,
                        description = %m.description,
                        checksum = %m.checksum,
                        duration_ms,
                        error = %e,
                        "migration failed"
                    );
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.max_retries)
            .build()
    }

    async fn step_transaction(&self, step: &Step<'_>) -> Result<()> {
        let m = step.migration;
        self.replay(m, "the migration's transaction", || {
            self.attempt_transaction(step)
        })
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
        // Ends an aborted transaction; if the connection is gone the server rolled back anyway.
        let _ = self.client.batch_execute("ROLLBACK").await;
    }

    async fn attempt_transaction(&self, step: &Step<'_>) -> std::result::Result<(), Fail> {
        let m = step.migration;
        let started = Instant::now();
        let sql = match step.direction {
            Direction::Up => m.up.as_str(),
            Direction::Down => m.down.as_deref().unwrap_or(""),
        };
        if let Err(e) = self.client.batch_execute(&format!("BEGIN;\n{sql}")).await {
            self.rollback().await;
            return Err(if is_retry(&e) {
                Fail::Retry
            } else {
                Fail::Stop(sql_failed(m, &e))
            });
        }
        let f = &self.lease.fence;
        let duration_ms = started.elapsed().as_millis() as i64;
        let written = match step.direction {
            Direction::Up => {
                let args = RecordArgs {
                    migration: m,
                    duration_ms: Some(duration_ms),
                    fence: f,
                    status: "applied",
                    statements_done: 0,
                };
                self.client.execute(&self.record, &args.params()).await
            }
            Direction::Down => {
                self.client
                    .execute(
                        &self.unrecord,
                        &[&m.version, &f.holder, &f.token, &f.ttl_ms],
                    )
                    .await
            }
        };
        match written {
            Ok(1) => {}
            Ok(_) => {
                self.rollback().await;
                return Err(Fail::Stop(Error::LeaseLost {
                    fence: f.token,
                    detail: format!(
                        "the fence check before recording version {} failed",
                        m.version
                    ),
                }));
            }
            Err(e) => {
                self.rollback().await;
                return Err(if is_retry(&e) {
                    Fail::Retry
                } else {
                    Fail::Stop(Error::db("recording the migration in the ledger", &e))
                });
            }
        }
        match self.client.batch_execute("COMMIT").await {
            Ok(()) => Ok(()),
            // CockroachDB: a retry error at COMMIT means nothing was committed.
            Err(e) if is_retry(&e) => {
                self.rollback().await;
                Err(Fail::Retry)
            }
            Err(e)
                if code(&e) == Some(SCHEMA_CHANGE_AFTER_COMMIT)
                    || e.code() == Some(&SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN) =>
            {
                self.rollback().await;
                let why = match e.as_db_error() {
                    Some(db) => {
                        format!("SQLSTATE {} at COMMIT: {}", db.code().code(), db.message())
                    }
                    None => e.to_string(),
                };
                Err(Fail::Stop(self.dirty(m, 0, why).await))
            }
            Err(e) => {
                self.rollback().await;
                Err(Fail::Stop(sql_failed(m, &e)))
            }
        }
    }

    /// Runs `op` (a whole transaction, or one autocommitted statement), replaying it on
    /// 40001 with jittered backoff: a transaction that got 40001 was rolled back and wrote
    /// nothing, so the replay is safe. On failure, the last error and how many attempts.
    async fn replay<T, E, F, Fut>(
        &self,
        m: &Migration,
        what: &str,
        mut op: F,
    ) -> std::result::Result<T, (E, u32)>
    where
        E: Replayable,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        let mut backoff = self.backoff();
        let mut attempt = 1u32;
        loop {
            let e = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let delay = match backoff.next() {
                Some(delay) if e.is_retry() => delay,
                _ => return Err((e, attempt)),
            };
            tracing::warn!(
                event = events::MIGRATION_RETRY,
                version = m.version,
                description = %m.description,
                checksum = %m.checksum,
                attempt,
                sqlstate = "40001",
                delay_ms = delay.as_millis() as u64,
                "serialization failure; replaying {what}"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Runs one autocommitted, fenced ledger statement (journal, dirty mark, the final record of
    /// a no-transaction step), replayed on 40001.
    async fn ledger_write(
        &self,
        m: &Migration,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, LedgerWriteError> {
        self.replay(m, "the ledger write", || {
            self.client.execute(statement, params)
        })
        .await
        .map_err(|(e, attempts)| {
            if is_retry(&e) {
                LedgerWriteError::Exhausted(Error::RetriesExhausted {
                    version: m.version,
                    attempts,
                })
            } else {
                LedgerWriteError::Db(e)
            }
        })
    }

    /// The fenced dirty-mark / journal write (`mark_dirty_sql`), replayed on 40001.
    async fn write_dirty(
        &self,
        m: &Migration,
        statements_done: i64,
    ) -> std::result::Result<u64, LedgerWriteError> {
        let f = &self.lease.fence;
        self.ledger_write(
            m,
            &self.mark_dirty,
            &[
                &m.version,
                &m.description,
                &m.checksum,
                &statements_done,
                &f.holder,
                &f.token,
                &f.ttl_ms,
            ],
        )
        .await
    }

    /// Marks `m` dirty in its own transaction and returns the error to stop with.
    async fn dirty(&self, m: &Migration, statements_done: i64, why: String) -> Error {
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

    /// Writes the journal: status dirty with `statements_done`, fenced.
    async fn journal(&self, m: &Migration, statements_done: i64) -> Result<()> {
        let n = self
            .write_dirty(m, statements_done)
            .await
            .map_err(|e| e.into_error(format!("journaling migration {}", m.version)))?;
        if n == 1 {
            Ok(())
        } else {
            Err(Error::LeaseLost {
                fence: self.lease.fence.token,
                detail: format!(
                    "the fence check while journaling version {} failed",
                    m.version
                ),
            })
        }
    }

    /// Runs one autocommitted statement, replaying it on 40001; returns rows affected.
    async fn autocommit(
        &self,
        m: &Migration,
        text: &str,
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        self.replay(m, "the statement", || async {
            self.client
                .simple_query(text)
                .await
                .map(|msgs| affected(&msgs))
        })
        .await
        .map_err(|(e, _)| e)
    }

    async fn step_no_transaction(&self, step: &Step<'_>) -> Result<()> {
        let started = Instant::now();
        let m = step.migration;
        let up = step.direction == Direction::Up;
        let statements: &[crate::source::split::Statement] = if up {
            &m.up_statements
        } else {
            m.down_statements.as_deref().unwrap_or_default()
        };
        let total = statements.len();
        // The journal: forward progress is statements_done >= 0; an undo in progress is
        // recorded as -(k + 1) after k undo statements, which a rerun never resumes.
        let mark = |k: usize| -> i64 { if up { k as i64 } else { -(k as i64) - 1 } };
        let first = if up { step.resume_from.min(total) } else { 0 };
        if first > 0 {
            tracing::info!(
                event = events::MIGRATION_STARTED,
                version = m.version,
                resume_after = first,
                "resuming after the statements already done"
            );
        }
        self.journal(m, mark(first)).await?;
        for (i, st) in statements.iter().enumerate().skip(first) {
            if self.stop.load(Ordering::SeqCst) {
                return Err(Error::Terminated);
            }
            // Each statement commits on its own, so check the heartbeat's verdict before each.
            if self.lease.is_lost() {
                return Err(Error::LeaseLost {
                    fence: self.lease.fence.token,
                    detail: format!(
                        "the heartbeat found the lease expired or taken before statement {} of version {}",
                        i + 1,
                        m.version
                    ),
                });
            }
            let result = if st.repeat_until_zero {
                let mut runs = 0u64;
                let mut rows_total = 0u64;
                loop {
                    match self.autocommit(m, &st.text).await {
                        Ok(n) => {
                            runs += 1;
                            rows_total += n;
                            tracing::info!(
                                event = "migration.batch",
                                version = m.version,
                                description = %m.description,
                                checksum = %m.checksum,
                                statement = i + 1,
                                run = runs,
                                rows = n,
                                rows_total,
                                "batch done"
                            );
                            if n == 0 {
                                break Ok(());
                            }
                            if self.stop.load(Ordering::SeqCst) {
                                return Err(Error::Terminated);
                            }
                        }
                        Err(e) => break Err(e),
                    }
                }
            } else {
                self.autocommit(m, &st.text).await.map(|_| ())
            };
            if let Err(e) = result {
                // The statement never took effect and the journal says where we are, so a
                // rerun resumes here: a transient outcome (exit 13), not a dirty failure.
                if up && is_retry(&e) {
                    return Err(Error::RetriesExhausted {
                        version: m.version,
                        attempts: self.max_retries as u32 + 1,
                    });
                }
                if e.is_closed() || code(&e).is_some_and(is_connection_class) {
                    return Err(Error::db(
                        format!("migration {} statement {}", m.version, i + 1),
                        &e,
                    ));
                }
                let why = match e.as_db_error() {
                    Some(db) => format!("SQLSTATE {}: {}", db.code().code(), db.message()),
                    None => e.to_string(),
                };
                let message = format!(
                    "statement {} of {} (line {}: `{}`) failed: {why}; statements 1..{} are done and will not be re-run{}",
                    i + 1,
                    total,
                    st.line,
                    excerpt(&st.text),
                    i,
                    if up {
                        "; fix the cause, then run migrate again to resume"
                    } else {
                        ""
                    }
                );
                return Err(self.dirty(m, mark(i), message).await);
            }
            self.journal(m, mark(i + 1)).await?;
        }
        let f = &self.lease.fence;
        let written = if up {
            // This run's share: a resumed migration's earlier runs are not in the journal.
            let args = RecordArgs {
                migration: m,
                duration_ms: Some(started.elapsed().as_millis() as i64),
                fence: f,
                status: "applied",
                statements_done: total as i64,
            };
            self.ledger_write(m, &self.record, &args.params()).await
        } else {
            self.ledger_write(
                m,
                &self.unrecord,
                &[&m.version, &f.holder, &f.token, &f.ttl_ms],
            )
            .await
        };
        match written {
            Ok(1) => Ok(()),
            Ok(_) => Err(Error::LeaseLost {
                fence: f.token,
                detail: format!("the fence check finishing version {} failed", m.version),
            }),
            Err(e) => Err(e.into_error("recording the migration in the ledger".into())),
        }
    }
}

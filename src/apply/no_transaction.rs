//! One `@NO_TRANSACTION` step: its statements run one at a time, each autocommitted (and
//! replayed on 40001), with the journal (`statements_done`, status dirty) written after each,
//! so a rerun resumes after the last one done. `@REPEAT_UNTIL_ZERO` statements re-run until
//! they affect no row. The file's `statement_timeout` / `lock_timeout` are set for the session
//! around the step and put back after it.

use std::time::Instant;

use tokio_postgres::SimpleQueryMessage;

use crate::backoff;
use crate::error::{Error, Result};
use crate::log::events;
use crate::plan::{Direction, Step};
use crate::source::Migration;
use crate::split::Statement;
use crate::sqlstate;
use crate::store::fence::{FencedWrite, Restore, Unrecord};

use super::replay::replay;
use super::{Applier, Finish, failed_statement, sql_failed, statements};

fn affected(msgs: &[SimpleQueryMessage]) -> u64 {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => *n,
            _ => 0,
        })
        .sum()
}

impl Applier<'_> {
    /// Writes the journal: status dirty with `statements_done`, fenced.
    async fn journal(&self, m: &Migration, statements_done: i64) -> Result<()> {
        let n = self
            .write_dirty(m, statements_done)
            .await
            .map_err(|e| e.into_error(format!("journaling migration {}", m.version)))?;
        if n == 1 {
            Ok(())
        } else {
            Err(self.lease.lost_error(format!(
                "the fence check while journaling version {} failed",
                m.version
            )))
        }
    }

    /// Runs one autocommitted statement, replaying it on 40001; returns rows affected.
    async fn autocommit(
        &self,
        m: &Migration,
        text: &str,
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        replay(m, "the statement", || async {
            self.client
                .simple_query(text)
                .await
                .map(|msgs| affected(&msgs))
        })
        .await
        .map_err(|(e, _)| e)
    }

    /// Runs a `@REPEAT_UNTIL_ZERO` statement until a run affects no row, logging each batch.
    async fn repeat_until_zero(
        &self,
        m: &Migration,
        index: usize,
        st: &Statement,
    ) -> Result<std::result::Result<(), tokio_postgres::Error>> {
        let mut runs = 0u64;
        let mut rows_total = 0u64;
        loop {
            let n = match self.autocommit(m, &st.text).await {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            runs += 1;
            rows_total += n;
            tracing::info!(
                event = events::MIGRATION_BATCH,
                version = m.version,
                description = %m.description,
                checksum = %m.checksum,
                statement = index + 1,
                run = runs,
                rows = n,
                rows_total,
                "batch done"
            );
            if n == 0 {
                return Ok(Ok(()));
            }
            if self.cancel.is_cancelled() {
                return Err(Error::Terminated);
            }
        }
    }

    pub(super) async fn step_no_transaction(&self, step: &Step<'_>) -> Result<()> {
        let m = &*step.migration;
        let saved = self
            .set_session_limits(m)
            .await
            .map_err(|e| sql_failed(m, e, None, false))?;
        let result = self.no_transaction_statements(step).await;
        self.restore_session_limits(saved).await;
        result
    }

    async fn no_transaction_statements(&self, step: &Step<'_>) -> Result<()> {
        let started = Instant::now();
        let m = &*step.migration;
        let up = step.direction == Direction::Up;
        let statements = statements(step);
        let total = statements.len();
        // The journal: forward progress is statements_done >= 0; an undo in progress is
        // recorded as -(k + 1) after k undo statements. Either way a rerun resumes after the
        // statements done (the plan reads the journal into `resume_from`).
        let mark = |k: usize| -> i64 { if up { k as i64 } else { -(k as i64) - 1 } };
        let first = step.resume_from.min(total);
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
            // Each statement commits on its own, so check the heartbeat's verdict before each.
            self.check_go_on(|| {
                format!(
                    "the heartbeat found the lease expired or taken before statement {} of version {}",
                    i + 1,
                    m.version
                )
            })?;
            let work = async {
                if st.repeat_until_zero {
                    self.repeat_until_zero(m, i, st).await
                } else {
                    Ok(self.autocommit(m, &st.text).await.map(|_| ()))
                }
            };
            let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(i + 1));
            let result =
                crate::progress::watched(self.watch.as_ref(), m.version, in_flight, work).await?;
            if let Err(e) = result {
                return Err(self.statement_failed(step, i, first, e, mark(i)).await);
            }
            self.journal(m, mark(i + 1)).await?;
        }
        let f = &self.lease.fence;
        // This run's share: a resumed migration's earlier runs are not in the journal.
        let finish = Finish::new(
            step,
            f,
            Some(started.elapsed().as_millis() as i64),
            total as i64,
        );
        match self
            .ledger_write(m, finish.statement(self), &finish.params())
            .await
        {
            Ok(1) => Ok(()),
            Ok(_) => Err(self.lease.lost_error(format!(
                "the fence check finishing version {} failed",
                m.version
            ))),
            Err(e) => Err(e.into_error("recording the migration in the ledger".into())),
        }
    }

    /// The error for statement `i` having failed with `e` (`first`: where this run started).
    async fn statement_failed(
        &self,
        step: &Step<'_>,
        i: usize,
        first: usize,
        e: tokio_postgres::Error,
        journal: i64,
    ) -> Error {
        let m = &*step.migration;
        let up = step.direction == Direction::Up;
        // The statement never took effect and the journal says where we are, so a rerun
        // resumes here: a transient outcome (exit 13), not a dirty failure.
        if up && sqlstate::is_retry(&e) {
            return Error::RetriesExhausted {
                version: m.version,
                attempts: backoff::REPLAY_RETRIES as u32 + 1,
            };
        }
        if sqlstate::is_connection_lost(&e) {
            return Error::db(format!("migration {} statement {}", m.version, i + 1), e);
        }
        if sqlstate::autocommit_ddl_outcome_unknown(&e, self.cockroach())
            && may_start_a_job(&statements(step)[i].text)
        {
            return self.dirty(m, journal, timed_out_ddl(step, i, &e, up)).await;
        }
        // Nothing of the migration ran (its first statement failed): the state is what it was
        // before, so put the journal back and report a plain failure (exit 30), not a dirty one.
        if i == 0 && first == 0 {
            let undone = if up {
                let write = Unrecord {
                    version: &m.version,
                    fence: &self.lease.fence,
                };
                self.ledger_write(m, &self.unrecord, &write.params()).await
            } else {
                let write = Restore {
                    version: &m.version,
                    statements_done: m.up_statements.len() as i64,
                    fence: &self.lease.fence,
                };
                self.ledger_write(m, &self.restore, &write.params()).await
            };
            if let Ok(1) = undone {
                return super::failure::schema_locked_hint(sql_failed(
                    m,
                    e,
                    Some((step, i)),
                    false,
                ));
            }
        }
        let why = match e.as_db_error() {
            Some(db) => format!("SQLSTATE {}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        let at = failed_statement(step, i, e.as_db_error());
        let message = format!(
            "{at} failed: {why}; statements 1..{} are done and will not be re-run{}",
            i,
            if up {
                "; fix the cause, then run migrate again to resume"
            } else {
                "; fix the cause, then run the rollback again to resume"
            }
        );
        self.dirty(m, journal, message).await
    }
}

/// Can `sql` start a schema-change job on CockroachDB? Its first word is one of the statements
/// that change the schema (CockroachDB's `tree.CanModifySchema` covers these and a few rarer
/// ones). Comments before it are skipped.
pub(crate) fn may_start_a_job(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "COMMENT" | "GRANT" | "REVOKE" | "REFRESH"
    )
}

/// Why a statement that timed out on CockroachDB leaves the migration dirty: the schema change
/// may have committed and its job may still be running (cockroachdb/cockroach#128474), so the
/// journal is not rewound, nor is the statement counted as done.
fn timed_out_ddl(step: &Step<'_>, i: usize, e: &tokio_postgres::Error, up: bool) -> String {
    let at = failed_statement(step, i, e.as_db_error());
    let next = if up {
        format!(
            "once the job is over, run migrate again to resume at statement {} (make it \
             idempotent, IF NOT EXISTS / IF EXISTS), or settle the row with `repair`",
            i + 1
        )
    } else {
        "once the job is over, settle the row with `repair`".to_string()
    };
    format!(
        "{at} hit SQLSTATE 57014 (statement timeout or cancel) on CockroachDB, where a schema \
         change commits before the session waits for its job: it may have taken effect, and its \
         job may still be running (SHOW JOBS); statements 1..{i} are done; {next}; raise \
         -- @STATEMENT_TIMEOUT for this file"
    )
}

#[cfg(test)]
mod tests {
    use super::may_start_a_job;

    #[test]
    fn schema_changes_may_start_a_job_and_dml_does_not() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "  alter table t add column c int",
            "-- build it\nCREATE UNIQUE INDEX u ON t (a)",
            "/* x */ DROP INDEX i",
            "TRUNCATE t",
        ] {
            assert!(may_start_a_job(sql), "{sql}");
        }
        for sql in [
            "UPDATE t SET a = 1",
            "INSERT INTO t VALUES (1)",
            "DELETE FROM t",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "-- CREATE\nSELECT 1",
        ] {
            assert!(!may_start_a_job(sql), "{sql}");
        }
    }
}

//! One transactional step: `BEGIN`, the migration's SQL, the fenced ledger write and `COMMIT`,
//! replayed whole on 40001; XXA00 or 40003 at COMMIT leaves the outcome unknown, so the
//! migration is marked dirty instead.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::plan::{Direction, Step};
use crate::sqlstate;

use super::replay::{Replayable, replay};
use super::{Applier, Finish, sql_failed};

/// How one attempt at a transactional step ended, when it did not succeed.
enum Fail {
    /// SQLSTATE 40001: rolled back, replay.
    Retry,
    /// Anything else: stop.
    Stop(Error),
}

impl Replayable for Fail {
    fn is_retry(&self) -> bool {
        matches!(self, Fail::Retry)
    }
}

impl Applier<'_> {
    pub(super) async fn step_transaction(&self, step: &Step<'_>) -> Result<()> {
        let m = step.migration;
        replay(m, "the migration's transaction", || self.attempt(step))
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

    async fn attempt(&self, step: &Step<'_>) -> std::result::Result<(), Fail> {
        let m = step.migration;
        let started = Instant::now();
        let sql = match step.direction {
            Direction::Up => m.up.as_str(),
            Direction::Down => m.down.as_deref().unwrap_or(""),
        };
        if let Err(e) = self.client.batch_execute(&format!("BEGIN;\n{sql}")).await {
            self.rollback().await;
            return Err(if sqlstate::is_retry(&e) {
                Fail::Retry
            } else {
                Fail::Stop(sql_failed(m, e))
            });
        }
        let f = &self.lease.fence;
        let finish = Finish::new(step, f, started.elapsed().as_millis() as i64, 0);
        match self
            .client
            .execute(finish.statement(self), &finish.params())
            .await
        {
            Ok(1) => {}
            Ok(_) => {
                self.rollback().await;
                return Err(Fail::Stop(self.lease.lost_error(format!(
                    "the fence check before recording version {} failed",
                    m.version
                ))));
            }
            Err(e) => {
                self.rollback().await;
                return Err(if sqlstate::is_retry(&e) {
                    Fail::Retry
                } else {
                    Fail::Stop(Error::db("recording the migration in the ledger", e))
                });
            }
        }
        match self.client.batch_execute("COMMIT").await {
            Ok(()) => Ok(()),
            // CockroachDB: a retry error at COMMIT means nothing was committed.
            Err(e) if sqlstate::is_retry(&e) => {
                self.rollback().await;
                Err(Fail::Retry)
            }
            Err(e) if sqlstate::is_commit_outcome_unknown(&e) => {
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
                Err(Fail::Stop(sql_failed(m, e)))
            }
        }
    }
}

//! Replaying on SQLSTATE 40001: a transaction (or autocommitted statement) that got 40001 was
//! rolled back and wrote nothing, so running it again is safe. One loop for the transactional
//! step, autocommitted statements and fenced ledger writes, with the backoff of `backoff::replay`.

use crate::backoff;
use crate::error::Error;
use crate::log::events;
use crate::source::Migration;
use crate::sqlstate;

/// An outcome worth replaying (SQLSTATE 40001).
pub trait Replayable {
    /// This failure is a 40001.
    fn is_retry(&self) -> bool;
}

impl Replayable for tokio_postgres::Error {
    fn is_retry(&self) -> bool {
        sqlstate::is_retry(self)
    }
}

/// Runs `op`, replaying it on 40001 with jittered backoff. On failure: the last error and how
/// many attempts were made.
pub async fn replay<T, E, F, Fut>(
    m: &Migration,
    what: &str,
    mut op: F,
) -> std::result::Result<T, (E, u32)>
where
    E: Replayable,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let mut delays = backoff::replay();
    let mut attempt = 1u32;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let delay = match delays.next() {
            Some(delay) if e.is_retry() => delay,
            _ => return Err((e, attempt)),
        };
        tracing::warn!(
            event = events::MIGRATION_RETRY,
            version = m.version,
            description = %m.description,
            checksum = %m.checksum,
            attempt,
            reason = "serialization failure",
            sqlstate = "40001",
            delay_ms = delay.as_millis() as u64,
            "serialization failure; replaying {what}"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// How a replayed ledger write failed.
pub enum LedgerWriteError {
    /// 40001 on every attempt.
    Exhausted(Error),
    /// Any other error, at once.
    Db(tokio_postgres::Error),
}

impl LedgerWriteError {
    /// The error to stop with, `context` saying what was being written.
    pub fn into_error(self, context: String) -> Error {
        match self {
            LedgerWriteError::Exhausted(e) => e,
            LedgerWriteError::Db(e) => Error::db(context, e),
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

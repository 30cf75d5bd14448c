//! Stopping a run from outside (SIGTERM): first ask it to start nothing new, then, past the
//! grace budget, abandon the step in flight. A [`Stop`] also keeps what the clean-up after an
//! abandoned step needs: the lease held, the migration connection's cancel token and the URL
//! to send the cancel request to.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connect::DbUrl;
use crate::error::{Error, Result};
use crate::session::Guard;

/// The handle that stops a run (or a [`crate::Migrator`]'s operations): cheap to clone, one
/// per run, so runs started side by side stop one by one.
#[derive(Clone, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancel: CancellationToken,
    abandon: CancellationToken,
    guard: Guard,
    url: OnceLock<DbUrl>,
}

impl Stop {
    /// Asks the work to start nothing new: waits for the database, the lease or a version wake
    /// up and end with [`Error::Terminated`]; a step in flight goes on to its end.
    pub fn cancel(&self) {
        self.0.cancel.cancel();
    }

    /// Whether [`Stop::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancel.is_cancelled()
    }

    /// Gives up the step in flight too: the work guarded by [`Stop::or_abandoned`] returns at
    /// once with [`Error::Terminated`], after cancelling the statement it was running (its
    /// transaction rolls back) and releasing the lease.
    pub fn abandon(&self) {
        self.cancel();
        self.0.abandon.cancel();
    }

    /// A migration connection is working under the lease (the SIGTERM grace applies).
    pub fn is_working(&self) -> bool {
        self.0.guard.is_working()
    }

    /// Runs `work` until it ends or [`Stop::abandon`] is called; then drops it, cleans up after
    /// it ([`Stop::release_abandoned`]) and returns [`Error::Terminated`].
    pub async fn or_abandoned<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let finished = tokio::select! {
            biased;
            _ = self.0.abandon.cancelled() => None,
            r = work => Some(r),
        };
        match finished {
            Some(r) => r,
            None => {
                self.release_abandoned().await;
                Err(Error::Terminated)
            }
        }
    }

    /// Cleans up after work whose future was dropped: cancels the statement the migration
    /// connection was running, then releases the lease.
    pub async fn release_abandoned(&self) {
        self.0.guard.abandon(self.0.url.get()).await;
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.0.cancel
    }

    pub(crate) fn guard(&self) -> &Guard {
        &self.0.guard
    }

    /// `config`'s DATABASE_URL, parsed (and its certificate files read) once per handle.
    pub(crate) fn url(&self, config: &Config) -> Result<&DbUrl> {
        if let Some(u) = self.0.url.get() {
            return Ok(u);
        }
        let parsed = DbUrl::from_setting(config.database_url())?;
        Ok(self.0.url.get_or_init(|| parsed))
    }
}

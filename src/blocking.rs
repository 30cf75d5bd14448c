//! A blocking wrapper around [`crate::Migrator`] for synchronous callers: each call runs the
//! async operation to completion on a private current-thread runtime.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::Rollback;
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

/// The synchronous migrator.
///
/// ```no_run
/// use crdb_migrate::{Config, Rollback, blocking::Migrator};
///
/// let config = Config::new(Some("postgresql://root@localhost:26257/app?sslmode=disable".into()), "migrations");
/// let migrator = Migrator::new(config)?;
/// let applied = migrator.migrate(None)?;
/// println!("applied {applied}; now at {}", migrator.current_version()?);
/// migrator.rollback(Rollback::Count(1))?;
/// # Ok::<(), crdb_migrate::Error>(())
/// ```
pub struct Migrator {
    inner: crate::Migrator,
    runtime: tokio::runtime::Runtime,
}

impl Migrator {
    /// A blocking migrator for `config`.
    pub fn new(config: Config) -> Result<Migrator> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Migrator {
            inner: crate::Migrator::new(config),
            runtime,
        })
    }

    /// See [`crate::Migrator::create`].
    pub fn create(
        &self,
        description: &str,
        up: Option<&str>,
        undo: Option<&str>,
    ) -> Result<PathBuf> {
        self.inner.create(description, up, undo)
    }

    /// See [`crate::Migrator::load`].
    pub fn load(&self) -> Result<Vec<Migration>> {
        self.inner.load()
    }

    /// See [`crate::Migrator::migrate`].
    pub fn migrate(&self, target: Option<i64>) -> Result<usize> {
        self.runtime.block_on(self.inner.migrate(target))
    }

    /// See [`crate::Migrator::rollback`].
    pub fn rollback(&self, how: Rollback) -> Result<usize> {
        self.runtime.block_on(self.inner.rollback(how))
    }

    /// See [`crate::Migrator::current_version`].
    pub fn current_version(&self) -> Result<i64> {
        self.runtime.block_on(self.inner.current_version())
    }

    /// See [`crate::Migrator::is_applied`].
    pub fn is_applied(&self, version: i64) -> Result<bool> {
        self.runtime.block_on(self.inner.is_applied(version))
    }

    /// See [`crate::Migrator::applied`].
    pub fn applied(&self) -> Result<Vec<AppliedRow>> {
        self.runtime.block_on(self.inner.applied())
    }
}

//! What a run did: the versions applied or undone and where the database ended, kept as the
//! run goes ([`Progress`]), so a failed or abandoned run still says what it applied; and how
//! it ended ([`Outcome`]: the report with the error, if any).

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// What a run did, kept even when it fails part-way.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Versions applied (migrate) or undone (rollback), in order.
    pub versions: Vec<i64>,
    /// The newest applied version at the end, when known.
    pub current: Option<i64>,
    /// Migrations left for the contract phase: `MIGRATE_PHASE=expand` stopped before the first
    /// `@CONTRACT` one, and these wait for `MIGRATE_PHASE=contract` (0 otherwise).
    pub contract_waiting: usize,
}

impl Report {
    /// How many migrations were applied or undone.
    pub fn count(&self) -> usize {
        self.versions.len()
    }
}

/// How a run ended: what it did, kept when it failed part-way, and its error if it failed.
#[derive(Debug)]
pub struct Outcome {
    /// What the run did.
    pub report: Report,
    /// `Err` when it failed or was stopped; the report says what was done before.
    pub result: Result<()>,
}

impl Outcome {
    /// A run that failed before it did anything.
    pub fn failed(e: Error) -> Outcome {
        Outcome {
            report: Report::default(),
            result: Err(e),
        }
    }

    /// The report when the run succeeded, else its error (the partial report is dropped).
    pub fn into_result(self) -> Result<Report> {
        self.result.map(|()| self.report)
    }
}

/// The report of the run under way, written by the run (and its applier) and read at its end;
/// a [`crate::Migrator`] keeps the last one's for [`crate::Migrator::progress`].
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Report>>);

impl Progress {
    /// Starts a new operation's report.
    pub fn reset(&self) {
        self.update(|r| *r = Report::default());
    }

    /// A step finished.
    pub fn done(&self, version: i64) {
        self.update(|r| r.versions.push(version));
    }

    /// The plan holds back `n` migrations for the contract phase.
    pub fn waiting(&self, n: usize) {
        self.update(|r| r.contract_waiting = n);
    }

    /// The database's current version is known.
    pub fn at(&self, current: i64) {
        self.update(|r| r.current = Some(current));
    }

    /// What was done so far.
    pub fn snapshot(&self) -> Report {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Report)) {
        if let Ok(mut r) = self.0.lock() {
            f(&mut r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_shared_and_reset() {
        let p = Progress::default();
        let watcher = p.clone();
        p.done(1);
        p.done(2);
        p.at(2);
        p.waiting(3);
        assert_eq!(
            watcher.snapshot(),
            Report {
                versions: vec![1, 2],
                current: Some(2),
                contract_waiting: 3,
            }
        );
        assert_eq!(watcher.snapshot().count(), 2);
        p.reset();
        assert_eq!(watcher.snapshot(), Report::default());
    }
}

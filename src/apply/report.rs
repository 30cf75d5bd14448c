//! What a run reports of each step as it goes: `migration.started` (and the step in flight,
//! which a lost connection cut), `migration.applied` / `migration.rolled_back` with the
//! version recorded in the run's progress, and `migration.failed`. A chain reports its steps one
//! by one as their replies come in, as single steps do.

use std::time::Instant;

use crate::error::Error;
use crate::log::events;
use crate::plan::{Direction, Step};
use crate::report::Progress;

use super::Applier;

impl Applier<'_> {
    /// Logs `migration.started` for `step` (at `i` in the plan) and keeps it as the step in
    /// flight.
    pub(super) fn started(&self, i: usize, step: &Step<'_>) {
        self.announce(step);
        self.at(i);
    }

    /// Keeps the step at `i` in the plan as the step in flight, from now.
    pub(super) fn at(&self, i: usize) {
        if let Ok(mut at) = self.in_flight.lock() {
            *at = Some((i, Instant::now()));
        }
    }

    /// Logs `migration.started` for `step`.
    pub(super) fn announce(&self, step: &Step<'_>) {
        let m = &*step.migration;
        tracing::info!(
            event = events::MIGRATION_STARTED,
            version = m.version,
            description = %m.description,
            checksum = %m.checksum,
            direction = step.direction.as_str(),
            no_transaction = m.no_transaction,
            "migration started"
        );
    }

    /// How long the step in flight has run, in milliseconds.
    fn duration_ms(&self) -> u64 {
        self.in_flight()
            .map_or(0, |(_, started)| started.elapsed().as_millis() as u64)
    }

    /// Logs `migration.applied` (or `migration.rolled_back`) for `step`, the step in flight,
    /// and records it in `progress`.
    pub(super) fn finished(&self, step: &Step<'_>, progress: &Progress) {
        let m = &*step.migration;
        let (event, message) = match step.direction {
            Direction::Up => (events::MIGRATION_APPLIED, "migration applied"),
            Direction::Down => (events::MIGRATION_ROLLED_BACK, "migration rolled back"),
        };
        tracing::info!(
            event,
            version = m.version,
            description = %m.description,
            checksum = %m.checksum,
            duration_ms = self.duration_ms(),
            "{message}"
        );
        progress.done(m.version);
    }

    /// Logs `migration.failed` for `step`, the step in flight.
    pub(super) fn failed(&self, step: &Step<'_>, e: &Error) {
        let m = &*step.migration;
        tracing::error!(
            event = events::MIGRATION_FAILED,
            version = m.version,
            description = %m.description,
            checksum = %m.checksum,
            duration_ms = self.duration_ms(),
            error = %e,
            "migration failed"
        );
    }
}

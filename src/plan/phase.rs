//! The expand/contract phase boundary (`MIGRATE_PHASE`): the first pending `@CONTRACT`
//! migration, and a plan cut there for the expand phase.

use super::{Direction, Plan};
use crate::source::Migration;

pub use crate::phase::Phase;

/// Pending forward migrations split at the phase boundary: the first `@CONTRACT` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// How many come before the boundary (what `MIGRATE_PHASE=expand` applies).
    pub expand: usize,
    /// The version of the first `@CONTRACT` migration, when one is pending.
    pub first_contract: Option<i64>,
}

/// Where `MIGRATE_PHASE=expand` stops in `pending` (forward migrations in the order they would
/// be applied): before the first `@CONTRACT` one.
pub fn boundary<'m>(pending: impl IntoIterator<Item = &'m Migration>) -> Boundary {
    let mut expand = 0;
    for m in pending {
        if m.contract {
            return Boundary {
                expand,
                first_contract: Some(m.version),
            };
        }
        expand += 1;
    }
    Boundary {
        expand,
        first_contract: None,
    }
}

impl<'a> Plan<'a> {
    /// The plan cut for `phase`: `expand` keeps the steps before the first `@CONTRACT`
    /// migration and holds back the rest ([`Plan::held_back`]), moving the target down to the
    /// last step kept; `contract` and `None` keep every step. A rollback plan is not cut.
    pub fn in_phase(mut self, phase: Option<Phase>) -> Plan<'a> {
        self.phase = phase;
        if phase != Some(Phase::Expand) || self.steps.iter().any(|s| s.direction == Direction::Down)
        {
            return self;
        }
        let b = boundary(self.steps.iter().map(|s| &*s.migration));
        self.held_back = self.steps.split_off(b.expand);
        if !self.held_back.is_empty() {
            self.target = self
                .steps
                .last()
                .map(|s| s.migration.version)
                .unwrap_or(self.current)
                .max(self.current);
        }
        self
    }

    /// The first `@CONTRACT` migration among the steps and the held-back ones: where
    /// `MIGRATE_PHASE=expand` stops.
    pub fn boundary(&self) -> Option<i64> {
        if self.steps.iter().any(|s| s.direction == Direction::Down) {
            return None;
        }
        boundary(
            self.steps
                .iter()
                .chain(&self.held_back)
                .map(|s| &*s.migration),
        )
        .first_contract
    }

    /// How many migrations wait for the contract phase (held back by `MIGRATE_PHASE=expand`).
    pub fn contract_waiting(&self) -> usize {
        self.held_back.len()
    }
}

//! The plan: a pure function of the migration set and the ledger's rows giving the steps to
//! take (up or down), or the reasons to refuse (drift, dirty marks, unknown versions, bad
//! targets, missing undo), and the expand/contract phase boundary (`MIGRATE_PHASE`). No
//! database here, so it is unit-tested on its own.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::refusal::{Disagreement, Refusal};
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

mod down;
mod goal;
mod phase;
mod stored;

pub use down::down;
pub use goal::Goal;
pub use phase::{Phase, boundary};
// Named by the unit tests; the rest of the crate reads it off `boundary`'s result.
#[cfg(test)]
use phase::Boundary;

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Apply the forward SQL.
    Up,
    /// Apply the undo SQL.
    Down,
}

impl Direction {
    /// `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// One step: one migration applied or undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    /// The migration: a file of the set, or (undoing a version this image has no file for) one
    /// rebuilt from the undo its ledger row keeps.
    pub migration: Cow<'a, Migration>,
    /// Up or down.
    pub direction: Direction,
    /// For a `@NO_TRANSACTION` migration left dirty: statements already done, to skip.
    pub resume_from: usize,
}

/// What a command will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The newest applied version before the plan runs (0 when none).
    pub current: i64,
    /// The version the database will be at after it.
    pub target: i64,
    /// The steps, in order.
    pub steps: Vec<Step<'a>>,
    /// The phase the plan was cut for (`MIGRATE_PHASE`); `None`: every pending migration.
    pub phase: Option<Phase>,
    /// Steps held back for the contract phase: with `MIGRATE_PHASE=expand`, the first pending
    /// `@CONTRACT` migration and every one after it (empty otherwise).
    pub held_back: Vec<Step<'a>>,
}

/// Switches that relax the checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// Applied versions unknown to this image are accepted (MIGRATE_ALLOW_NEWER_SCHEMA).
    pub newer_schema: bool,
    /// Pending files older than the newest applied one are applied (MIGRATE_ALLOW_OUT_OF_ORDER).
    pub out_of_order: bool,
}

/// How far to roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollback {
    /// The newest N applied migrations.
    Count(usize),
    /// Every applied migration above this version (0: all).
    Target(i64),
    /// Every applied migration newer than the newest file of this image, with the undo the
    /// ledger keeps (`rollback --to-image`): what an older release runs when it is rolled back
    /// to.
    ToImage,
}

/// Where the database and the files disagree, each with what to do.
pub fn disagreements(set: &[Migration], rows: &[AppliedRow], allow: Allow) -> Vec<Disagreement> {
    let files: BTreeMap<i64, &Migration> = set.iter().map(|m| (m.version, m)).collect();
    let mut out = Vec::new();
    for row in rows {
        match files.get(&row.version) {
            None if allow.newer_schema && !row.dirty => {}
            None => out.push(Disagreement::UnknownApplied {
                version: row.version,
                description: row.description.clone(),
                dirty: row.dirty,
            }),
            Some(m) => {
                if let Some(sum) = &row.checksum
                    && sum != &m.checksum
                {
                    out.push(Disagreement::Drift {
                        version: m.version,
                        file: m.path.clone(),
                        recorded: sum.clone(),
                        on_disk: m.checksum.clone(),
                        dirty: row.dirty,
                    });
                } else if row.dirty && (!m.no_transaction || row.statements_done < 0) {
                    out.push(Disagreement::Dirty {
                        version: m.version,
                        file: m.path.clone(),
                        undoing: row.statements_done < 0,
                    });
                }
            }
        }
    }
    if !allow.out_of_order {
        let newest = rows
            .iter()
            .filter(|r| files.contains_key(&r.version))
            .map(|r| r.version)
            .max()
            .unwrap_or(0);
        let applied: BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
        for m in set {
            if m.version < newest && !applied.contains(&m.version) {
                out.push(Disagreement::OutOfOrder {
                    version: m.version,
                    file: m.path.clone(),
                    newest_applied: newest,
                });
            }
        }
    }
    out
}

fn check(set: &[Migration], rows: &[AppliedRow], allow: Allow) -> Result<()> {
    check_disagreements(disagreements(set, rows, allow))
}

/// `Ok` when `d` is empty, else the disagreements as the error.
fn check_disagreements(d: Vec<Disagreement>) -> Result<()> {
    if d.is_empty() {
        Ok(())
    } else {
        Err(Error::Disagreement(d))
    }
}

/// The newest applied version that this image knows (0 when none).
fn current(set: &[Migration], rows: &[AppliedRow], allow: Allow) -> i64 {
    rows.iter()
        .filter(|r| !allow.newer_schema || set.iter().any(|m| m.version == r.version))
        .filter(|r| !r.dirty)
        .map(|r| r.version)
        .max()
        .unwrap_or(0)
}

/// The plan for `migrate [--target]`.
pub fn up<'a>(
    set: &'a [Migration],
    rows: &[AppliedRow],
    target: Option<i64>,
    allow: Allow,
) -> Result<Plan<'a>> {
    check(set, rows, allow)?;
    let newest_file = set.last().map(|m| m.version).unwrap_or(0);
    let cur = current(set, rows, allow);
    let target = match target {
        None => newest_file.max(cur),
        Some(t) => {
            if t != 0 && !set.iter().any(|m| m.version == t) {
                return Err(Error::Refused(Refusal::TargetNotAFile {
                    target: t,
                    dir: dir_of(set),
                }));
            }
            if t < cur {
                return Err(Error::Refused(Refusal::TargetBelowCurrent {
                    target: t,
                    current: cur,
                }));
            }
            t
        }
    };
    let by_version: BTreeMap<i64, &AppliedRow> = rows.iter().map(|r| (r.version, r)).collect();
    let steps = set
        .iter()
        .filter(|m| m.version <= target)
        .filter_map(|m| match by_version.get(&m.version) {
            None => Some(Step {
                migration: Cow::Borrowed(m),
                direction: Direction::Up,
                resume_from: 0,
            }),
            // A dirty no-transaction migration with an unchanged file resumes (checked above).
            Some(r) if r.dirty => Some(Step {
                migration: Cow::Borrowed(m),
                direction: Direction::Up,
                resume_from: usize::try_from(r.statements_done).unwrap_or(0),
            }),
            Some(_) => None,
        })
        .collect();
    Ok(Plan {
        current: cur,
        target,
        steps,
        phase: None,
        held_back: Vec::new(),
    })
}

fn dir_of(set: &[Migration]) -> String {
    set.first()
        .and_then(|m| m.path.parent())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the migrations directory".into())
}

#[cfg(test)]
mod down_tests;
#[cfg(test)]
mod tests;

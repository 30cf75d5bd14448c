//! The plan: a pure function of the migration set and the ledger's rows giving the steps to
//! take (up or down), or the reasons to refuse (drift, dirty marks, unknown versions, bad
//! targets, missing undo), and the expand/contract phase boundary (`MIGRATE_PHASE`). No
//! database here, so it is unit-tested on its own.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::refusal::{Disagreement, MissingUndo, Refusal};
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

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
    /// The migration.
    pub migration: &'a Migration,
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

/// A rollout phase (`MIGRATE_PHASE`), for rollouts where old pods run against the new schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before (or during) the rollout: apply pending migrations up to, not including, the first
    /// `@CONTRACT` one.
    Expand,
    /// After the rollout: apply the rest (every pending migration).
    Contract,
}

impl Phase {
    /// `expand` or `contract`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::Contract => "contract",
        }
    }

    /// Parses `expand` or `contract` (any case); the error says what is accepted.
    pub fn parse(s: &str) -> std::result::Result<Phase, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "expand" => Ok(Phase::Expand),
            "contract" => Ok(Phase::Contract),
            _ => Err(format!(
                "expected expand or contract (leave it unset to apply everything), got {s:?}"
            )),
        }
    }
}

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
        let b = boundary(self.steps.iter().map(|s| s.migration));
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
                .map(|s| s.migration),
        )
        .first_contract
    }

    /// How many migrations wait for the contract phase (held back by `MIGRATE_PHASE=expand`).
    pub fn contract_waiting(&self) -> usize {
        self.held_back.len()
    }
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
    let d = disagreements(set, rows, allow);
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
                migration: m,
                direction: Direction::Up,
                resume_from: 0,
            }),
            // A dirty no-transaction migration with an unchanged file resumes (checked above).
            Some(r) if r.dirty => Some(Step {
                migration: m,
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

/// The plan for `rollback`. Every undo must exist before anything runs.
pub fn down<'a>(
    set: &'a [Migration],
    rows: &[AppliedRow],
    how: Rollback,
    allow: Allow,
) -> Result<Plan<'a>> {
    // Rollback applies nothing, so a pending older file is no reason to refuse it.
    let allow = Allow {
        out_of_order: true,
        ..allow
    };
    check(set, rows, allow)?;
    let cur = rows.iter().map(|r| r.version).max().unwrap_or(0);
    let mut applied: Vec<&AppliedRow> = rows.iter().collect();
    applied.sort_by_key(|r| std::cmp::Reverse(r.version));
    let chosen: Vec<&AppliedRow> = match how {
        Rollback::Count(n) => {
            // A typo here would undo everything: --count must match what is applied.
            if n == 0 || n > applied.len() {
                return Err(Error::Refused(Refusal::BadCount {
                    count: n,
                    applied: applied.len(),
                }));
            }
            applied.into_iter().take(n).collect()
        }
        Rollback::Target(t) => {
            if t < 0 {
                return Err(Error::Refused(Refusal::NegativeTarget { target: t }));
            }
            if t != 0 && !rows.iter().any(|r| r.version == t) && !set.iter().any(|m| m.version == t)
            {
                return Err(Error::Refused(Refusal::UnknownRollbackTarget { target: t }));
            }
            applied.into_iter().filter(|r| r.version > t).collect()
        }
    };
    let mut steps = Vec::new();
    let mut missing = Vec::new();
    // A half-applied forward migration would be undone by SQL written for a whole one.
    if let Some(r) = rows.iter().find(|r| r.dirty) {
        return Err(Error::Disagreement(vec![Disagreement::PartlyApplied {
            version: r.version,
            description: r.description.clone(),
            statements_done: r.statements_done,
        }]));
    }
    for r in &chosen {
        match set.iter().find(|m| m.version == r.version) {
            None => missing.push(MissingUndo::NoFile {
                version: r.version,
                description: r.description.clone(),
            }),
            Some(m) if m.down.is_none() => missing.push(MissingUndo::Irreversible {
                version: m.version,
                file: m.path.clone(),
            }),
            Some(m) => steps.push(Step {
                migration: m,
                direction: Direction::Down,
                resume_from: 0,
            }),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Refused(Refusal::MissingUndo(missing)));
    }
    let target = rows
        .iter()
        .map(|r| r.version)
        .filter(|v| !chosen.iter().any(|c| c.version == *v))
        .max()
        .unwrap_or(0);
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mig(v: i64, down: bool) -> Migration {
        Migration {
            version: v,
            slug: format!("m{v}"),
            description: format!("m{v}"),
            path: format!("migrations/{v}_m{v}.sql").into(),
            up: format!("CREATE TABLE t{v} (id INT)"),
            down: down.then(|| format!("DROP TABLE t{v}")),
            no_transaction: false,
            checksum: format!("sum{v}"),
            ..Migration::default()
        }
    }

    fn row(v: i64) -> AppliedRow {
        AppliedRow {
            version: v,
            description: format!("m{v}"),
            applied_at: None,
            checksum: Some(format!("sum{v}")),
            duration_ms: None,
            applied_by: None,
            fence: None,
            dirty: false,
            statements_done: 0,
        }
    }

    fn versions(p: &Plan) -> Vec<i64> {
        p.steps.iter().map(|s| s.migration.version).collect()
    }

    #[test]
    fn up_applies_pending_in_order_up_to_target() {
        let set: Vec<_> = (1..=5).map(|v| mig(v, true)).collect();
        let p = up(&set, &[row(1), row(2)], None, Allow::default()).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![3, 4, 5]));
        let p = up(&set, &[row(1)], Some(3), Allow::default()).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![2, 3]));
        assert_eq!(p.map(|p| p.target), Some(3));
    }

    #[test]
    fn up_refuses_a_target_below_current_and_unknown_targets() {
        let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
        assert!(matches!(
            up(&set, &[row(1), row(2)], Some(1), Allow::default()),
            Err(Error::Refused(_))
        ));
        assert!(matches!(
            up(&set, &[], Some(7), Allow::default()),
            Err(Error::Refused(_))
        ));
    }

    #[test]
    fn drift_unknown_dirty_and_out_of_order_are_disagreements() {
        let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
        let mut drifted = row(1);
        drifted.checksum = Some("other".into());
        assert!(matches!(
            up(&set, &[drifted], None, Allow::default()),
            Err(Error::Disagreement(_))
        ));
        // NULL checksum (adopted from the seed's tool) is not drift.
        let mut adopted = row(1);
        adopted.checksum = None;
        assert!(up(&set, &[adopted], None, Allow::default()).is_ok());
        // Unknown applied version.
        assert!(matches!(
            up(&set, &[row(1), row(9)], None, Allow::default()),
            Err(Error::Disagreement(_))
        ));
        let allow = Allow {
            newer_schema: true,
            ..Allow::default()
        };
        let p = up(&set, &[row(1), row(2), row(3), row(9)], None, allow).ok();
        assert_eq!(p.map(|p| p.steps.len()), Some(0));
        // Dirty transactional migration.
        let mut dirty = row(2);
        dirty.dirty = true;
        assert!(matches!(
            up(&set, &[row(1), dirty], None, Allow::default()),
            Err(Error::Disagreement(_))
        ));
        // Out of order.
        assert!(matches!(
            up(&set, &[row(1), row(3)], None, Allow::default()),
            Err(Error::Disagreement(_))
        ));
        let allow = Allow {
            out_of_order: true,
            ..Allow::default()
        };
        let p = up(&set, &[row(1), row(3)], None, allow).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![2]));
    }

    #[test]
    fn dirty_no_transaction_migration_resumes() {
        let mut set: Vec<_> = (1..=2).map(|v| mig(v, true)).collect();
        set[1].no_transaction = true;
        let mut dirty = row(2);
        dirty.dirty = true;
        dirty.statements_done = 2;
        let p = up(&set, &[row(1), dirty], None, Allow::default()).ok();
        assert_eq!(p.map(|p| p.steps[0].resume_from), Some(2));
    }

    #[test]
    fn rollback_by_count_and_target_newest_first() {
        let set: Vec<_> = (1..=4).map(|v| mig(v, true)).collect();
        let rows: Vec<_> = (1..=4).map(row).collect();
        let p = down(&set, &rows, Rollback::Count(2), Allow::default()).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![4, 3]));
        assert_eq!(p.map(|p| p.target), Some(2));
        let p = down(&set, &rows, Rollback::Target(0), Allow::default()).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![4, 3, 2, 1]));
        let p = down(&set, &rows, Rollback::Target(3), Allow::default()).ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![4]));
    }

    #[test]
    fn rollback_refuses_when_any_undo_is_missing() {
        let set = vec![mig(1, true), mig(2, false), mig(3, true)];
        let rows: Vec<_> = (1..=3).map(row).collect();
        assert!(matches!(
            down(&set, &rows, Rollback::Count(3), Allow::default()),
            Err(Error::Refused(_))
        ));
        assert!(down(&set, &rows, Rollback::Count(1), Allow::default()).is_ok());
    }

    #[test]
    fn rollback_ignores_pending_older_files() {
        let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
        let p = down(
            &set,
            &[row(1), row(3)],
            Rollback::Count(1),
            Allow::default(),
        )
        .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![3]));
    }

    #[test]
    fn rollback_count_must_match_what_is_applied() {
        let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
        let rows: Vec<_> = (1..=3).map(row).collect();
        for n in [0, 4, 10] {
            assert!(
                matches!(
                    down(&set, &rows, Rollback::Count(n), Allow::default()),
                    Err(Error::Refused(_))
                ),
                "{n}"
            );
        }
        assert!(down(&set, &rows, Rollback::Count(3), Allow::default()).is_ok());
    }

    fn contract(mut m: Migration) -> Migration {
        m.contract = true;
        m
    }

    #[test]
    fn phases_parse_and_name_what_is_accepted() {
        assert_eq!(Phase::parse("expand"), Ok(Phase::Expand));
        assert_eq!(Phase::parse(" Contract "), Ok(Phase::Contract));
        let e = Phase::parse("later").unwrap_err();
        assert!(
            e.contains("expand or contract") && e.contains("later"),
            "{e}"
        );
    }

    #[test]
    fn expand_stops_before_the_first_contract_migration() {
        // 1 applied; 2, 3 expand; 4 contract; 5 plain (after the boundary: contract phase too).
        let set = vec![
            mig(1, true),
            mig(2, true),
            mig(3, true),
            contract(mig(4, true)),
            mig(5, true),
        ];
        let p =
            up(&set, &[row(1)], None, Allow::default()).map(|p| p.in_phase(Some(Phase::Expand)));
        let p = p.ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![2, 3]));
        assert_eq!(p.as_ref().map(|p| p.target), Some(3));
        assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(2));
        assert_eq!(p.as_ref().and_then(Plan::boundary), Some(4));
        // Contract (and unset) apply the rest: everything pending.
        for phase in [Some(Phase::Contract), None] {
            let p = up(&set, &[row(1), row(2), row(3)], None, Allow::default())
                .map(|p| p.in_phase(phase))
                .ok();
            assert_eq!(p.as_ref().map(versions), Some(vec![4, 5]), "{phase:?}");
            assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(0));
            assert_eq!(p.as_ref().map(|p| p.target), Some(5));
            assert_eq!(p.as_ref().and_then(Plan::boundary), Some(4));
        }
    }

    #[test]
    fn expand_with_a_contract_migration_next_does_nothing_and_a_target_still_caps() {
        let set = vec![mig(1, true), contract(mig(2, true)), mig(3, true)];
        let p = up(&set, &[row(1)], None, Allow::default())
            .map(|p| p.in_phase(Some(Phase::Expand)))
            .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![]));
        assert_eq!(p.as_ref().map(|p| p.target), Some(1));
        assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(2));
        // Without a contract migration, expand is everything.
        let plain: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
        let p = up(&plain, &[], Some(2), Allow::default())
            .map(|p| p.in_phase(Some(Phase::Expand)))
            .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![1, 2]));
        assert_eq!(p.as_ref().map(|p| p.target), Some(2));
        assert_eq!(p.as_ref().and_then(Plan::boundary), None);
        // A contract migration beyond the target is not a boundary of this plan.
        let p = up(&set, &[], Some(1), Allow::default())
            .map(|p| p.in_phase(Some(Phase::Expand)))
            .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![1]));
        assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(0));
    }

    #[test]
    fn a_rollback_is_never_cut_by_a_phase() {
        let set = vec![mig(1, true), contract(mig(2, true))];
        let p = down(
            &set,
            &[row(1), row(2)],
            Rollback::Target(0),
            Allow::default(),
        )
        .map(|p| p.in_phase(Some(Phase::Expand)))
        .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![2, 1]));
        assert_eq!(p.as_ref().and_then(Plan::boundary), None);
    }

    #[test]
    fn boundary_counts_the_expand_part() {
        let set = vec![mig(1, true), contract(mig(2, true)), contract(mig(3, true))];
        assert_eq!(
            boundary(&set),
            Boundary {
                expand: 1,
                first_contract: Some(2)
            }
        );
        assert_eq!(
            boundary(&set[..1]),
            Boundary {
                expand: 1,
                first_contract: None
            }
        );
    }

    proptest! {
        /// Whatever is applied, `up` yields the unapplied files in ascending version order.
        #[test]
        fn up_steps_are_sorted_and_exactly_the_pending(
            versions in proptest::collection::btree_set(1i64..i64::MAX, 0..30),
            applied_count in 0usize..30,
        ) {
            let set: Vec<_> = versions.iter().map(|v| mig(*v, true)).collect();
            let n = applied_count.min(set.len());
            let rows: Vec<_> = set[..n].iter().map(|m| row(m.version)).collect();
            let p = up(&set, &rows, None, Allow::default());
            prop_assert!(p.is_ok());
            let got: Vec<i64> = p.map(|p| p.steps.iter().map(|s| s.migration.version).collect()).unwrap_or_default();
            let want: Vec<i64> = set[n..].iter().map(|m| m.version).collect();
            prop_assert_eq!(got, want);
        }
    }
}

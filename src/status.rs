//! `status`: the state of every migration (applied, dirty, pending, missing its file), what
//! `migrate` would refuse, and the lease. [`status_of`] is pure: files and ledger rows in, the
//! report out. It shows the expand/contract phase boundary of the pending files too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::jobs::Job;
use crate::plan::{self, Allow, Direction, Plan};
use crate::refusal::Disagreement;
use crate::source::Migration;
use crate::store::lease::LeaseInfo;
use crate::store::ledger::{AppliedRow, Ledger};

/// The state of one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied and recorded.
    Applied,
    /// Marked dirty: possibly partly applied.
    Dirty,
    /// A file not applied yet.
    Pending,
}

impl State {
    /// `applied`, `dirty` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Dirty => "dirty",
            State::Pending => "pending",
        }
    }
}

/// One migration as `status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusRow {
    /// Version.
    pub version: i64,
    /// Description.
    pub description: String,
    /// Applied, dirty or pending.
    pub state: State,
    /// When applied (RFC 3339), for applied and dirty rows.
    pub applied_at: Option<String>,
    /// `true`/`false` when both a file and a recorded checksum exist, else `null`.
    pub checksum_matches: Option<bool>,
    /// Who applied it.
    pub applied_by: Option<String>,
    /// The file, when this image has one.
    pub file: Option<PathBuf>,
    /// The file says `-- @CONTRACT` (deliberately incompatible with the previous release).
    pub contract: bool,
}

/// Where the pending files split into the expand and the contract phase (`MIGRATE_PHASE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PhaseStatus {
    /// The first pending `@CONTRACT` migration: `MIGRATE_PHASE=expand` stops before it.
    pub boundary: Option<i64>,
    /// Pending versions `MIGRATE_PHASE=expand` applies.
    pub expand: Vec<i64>,
    /// Pending versions that wait for `MIGRATE_PHASE=contract` (the boundary and after it).
    pub contract: Vec<i64>,
}

/// The `status` report (the stable JSON of `status --json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Status {
    /// The newest applied version (0 when none).
    pub current_version: i64,
    /// Every applied or dirty migration and every pending file, by version.
    pub migrations: Vec<StatusRow>,
    /// Pending versions.
    pub pending: Vec<i64>,
    /// Dirty versions.
    pub dirty: Vec<i64>,
    /// Versions applied in the database but without a file in this image.
    pub missing_files: Vec<i64>,
    /// Where the database and the files disagree (what `migrate` would refuse with exit 32).
    pub disagreements: Vec<Disagreement>,
    /// The lease, when the table exists.
    pub lease: Option<LeaseInfo>,
    /// Problems that kept the migration files from loading (then only the database's side is
    /// shown: nothing is known to be pending or to disagree).
    pub file_problems: Vec<String>,
    /// CockroachDB schema-change jobs on this database's tables that are still running,
    /// reverting or paused (always empty on PostgreSQL). A paused or reverting one on a table
    /// a pending migration names makes `migrate` exit 32.
    pub jobs: Vec<Job>,
    /// The expand/contract phase boundary among the pending files.
    pub phase: PhaseStatus,
}

impl Status {
    /// One word for the whole database, for a line per target of a fleet: `disagrees` (what
    /// `migrate` would refuse), `dirty`, `files_bad` (the files did not load), `pending`, or
    /// `up_to_date`.
    pub fn state_word(&self) -> &'static str {
        if !self.disagreements.is_empty() {
            "disagrees"
        } else if !self.dirty.is_empty() {
            "dirty"
        } else if !self.file_problems.is_empty() {
            "files_bad"
        } else if !self.pending.is_empty() {
            "pending"
        } else {
            "up_to_date"
        }
    }
}

fn rfc3339(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// Builds the status report.
pub fn status_of(
    set: &[Migration],
    ledger: &Ledger,
    allow: Allow,
    lease: Option<LeaseInfo>,
) -> Status {
    let files: BTreeMap<i64, &Migration> = set.iter().map(|m| (m.version, m)).collect();
    let rows: BTreeMap<i64, &AppliedRow> = ledger.rows.iter().map(|r| (r.version, r)).collect();
    let versions: BTreeSet<i64> = files.keys().chain(rows.keys()).copied().collect();
    let mut migrations = Vec::new();
    let (mut pending, mut dirty, mut missing_files) = (Vec::new(), Vec::new(), Vec::new());
    for v in versions {
        let file = files.get(&v).copied();
        let row = rows.get(&v).copied();
        let state = match row {
            None => State::Pending,
            Some(r) if r.dirty => State::Dirty,
            Some(_) => State::Applied,
        };
        match state {
            State::Pending => pending.push(v),
            State::Dirty => dirty.push(v),
            State::Applied => {}
        }
        if row.is_some() && file.is_none() {
            missing_files.push(v);
        }
        migrations.push(StatusRow {
            version: v,
            description: row
                .map(|r| r.description.clone())
                .or_else(|| file.map(|m| m.description.clone()))
                .unwrap_or_default(),
            state,
            applied_at: rfc3339(row.and_then(|r| r.applied_at)),
            checksum_matches: match (file, row.and_then(|r| r.checksum.as_ref())) {
                (Some(m), Some(sum)) => Some(&m.checksum == sum),
                _ => None,
            },
            applied_by: row.and_then(|r| r.applied_by.clone()),
            file: file.map(|m| m.path.clone()),
            contract: file.is_some_and(|m| m.contract),
        });
    }
    let pending_files: Vec<&Migration> = pending
        .iter()
        .filter_map(|v| files.get(v).copied())
        .collect();
    let b = plan::boundary(pending_files.iter().copied());
    let phase = PhaseStatus {
        boundary: b.first_contract,
        expand: pending_files[..b.expand]
            .iter()
            .map(|m| m.version)
            .collect(),
        contract: pending_files[b.expand..]
            .iter()
            .map(|m| m.version)
            .collect(),
    };
    Status {
        current_version: ledger.current(),
        migrations,
        pending,
        dirty,
        missing_files,
        disagreements: plan::disagreements(set, &ledger.rows, allow),
        lease,
        file_problems: Vec::new(),
        jobs: Vec::new(),
        phase,
    }
}

/// The current version after a run of `plan` that finished the steps in `done` (and maybe
/// failed after them).
pub fn current_after(rows: &[AppliedRow], plan: &Plan, done: &[i64]) -> i64 {
    let mut versions: BTreeSet<i64> = rows
        .iter()
        .filter(|r| !r.dirty)
        .map(|r| r.version)
        .collect();
    for s in &plan.steps {
        if done.contains(&s.migration.version) {
            match s.direction {
                Direction::Up => versions.insert(s.migration.version),
                Direction::Down => versions.remove(&s.migration.version),
            };
        }
    }
    versions.last().copied().unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::Step;

    pub(crate) fn mig(v: i64) -> Migration {
        let mut m = crate::source::parse(
            std::path::Path::new(&format!("migrations/{v}_m{v}.sql")),
            format!("CREATE TABLE t{v} (id INT);\n-- @UNDO\nDROP TABLE t{v};\n").as_bytes(),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        m.checksum = format!("sum{v}");
        m
    }

    pub(crate) fn row(v: i64) -> AppliedRow {
        AppliedRow {
            version: v,
            description: format!("m{v}"),
            applied_at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).ok(),
            checksum: Some(format!("sum{v}")),
            duration_ms: Some(3),
            applied_by: Some("pod-a".into()),
            fence: Some(1),
            dirty: false,
            statements_done: 0,
            undo: Default::default(),
        }
    }

    fn ledger(rows: Vec<AppliedRow>) -> Ledger {
        Ledger {
            needs_adoption: false,
            rows,
        }
    }

    #[test]
    fn applied_pending_dirty_and_missing_files() {
        let set = vec![mig(1), mig(2), mig(3)];
        let mut dirty = row(2);
        dirty.dirty = true;
        let s = status_of(
            &set,
            &ledger(vec![row(1), dirty, row(9)]),
            Allow::default(),
            None,
        );
        assert_eq!(s.current_version, 9);
        let states: Vec<(i64, State)> = s.migrations.iter().map(|m| (m.version, m.state)).collect();
        assert_eq!(
            states,
            vec![
                (1, State::Applied),
                (2, State::Dirty),
                (3, State::Pending),
                (9, State::Applied)
            ]
        );
        assert_eq!(s.pending, vec![3]);
        assert_eq!(s.dirty, vec![2]);
        assert_eq!(s.missing_files, vec![9]);
        assert_eq!(
            s.migrations[0].applied_at.as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(s.migrations[2].applied_at, None);
        assert_eq!(s.migrations[3].file, None);
        // 9 has no file, 2 is dirty; 3 is above the newest applied file, so not out of order.
        let kinds: Vec<String> = s
            .disagreements
            .iter()
            .map(|d| {
                serde_json::to_value(d)
                    .map(|v| v["kind"].to_string())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(kinds, vec!["\"dirty\"", "\"unknown_applied\""]);
    }

    #[test]
    fn checksum_match_is_null_without_a_file_or_a_recorded_sum() {
        let set = vec![mig(1), mig(2), mig(3)];
        let mut adopted = row(2);
        adopted.checksum = None;
        let mut changed = row(3);
        changed.checksum = Some("other".into());
        let s = status_of(
            &set,
            &ledger(vec![row(1), adopted, changed]),
            Allow::default(),
            None,
        );
        let sums: Vec<Option<bool>> = s.migrations.iter().map(|m| m.checksum_matches).collect();
        assert_eq!(sums, vec![Some(true), None, Some(false)]);
        assert!(matches!(
            s.disagreements[..],
            [Disagreement::Drift { version: 3, .. }]
        ));
    }

    #[test]
    fn description_prefers_the_recorded_one() {
        let set = vec![mig(1), mig(2)];
        let mut r = row(1);
        r.description = "as recorded".into();
        let s = status_of(&set, &ledger(vec![r]), Allow::default(), None);
        assert_eq!(s.migrations[0].description, "as recorded");
        assert_eq!(s.migrations[1].description, "m2");
        assert_eq!(s.current_version, 1);
    }

    #[test]
    fn newer_schema_allowed_is_no_disagreement() {
        let allow = Allow {
            newer_schema: true,
            ..Allow::default()
        };
        let s = status_of(&[mig(1)], &ledger(vec![row(1), row(2)]), allow, None);
        assert!(s.disagreements.is_empty(), "{:?}", s.disagreements);
        assert_eq!(s.missing_files, vec![2]);
    }

    #[test]
    fn the_phase_boundary_splits_the_pending_files() {
        let mut set = vec![mig(1), mig(2), mig(3), mig(4)];
        set[2].contract = true;
        let s = status_of(&set, &ledger(vec![row(1)]), Allow::default(), None);
        assert_eq!(
            s.phase,
            PhaseStatus {
                boundary: Some(3),
                expand: vec![2],
                contract: vec![3, 4],
            }
        );
        let flags: Vec<bool> = s.migrations.iter().map(|m| m.contract).collect();
        assert_eq!(flags, vec![false, false, true, false]);
        let json = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(json["phase"]["boundary"], 3);
        assert_eq!(json["phase"]["contract"], serde_json::json!([3, 4]));
        // Once the contract migration is applied, there is no boundary left.
        let s = status_of(
            &set,
            &ledger(vec![row(1), row(2), row(3)]),
            Allow::default(),
            None,
        );
        assert_eq!(s.phase.boundary, None);
        assert_eq!(s.phase.expand, vec![4]);
    }

    #[test]
    fn current_after_counts_only_finished_steps() {
        let set = [mig(1), mig(2), mig(3)];
        let plan = Plan {
            current: 1,
            target: 3,
            steps: vec![
                Step {
                    migration: std::borrow::Cow::Borrowed(&set[1]),
                    direction: Direction::Up,
                    resume_from: 0,
                },
                Step {
                    migration: std::borrow::Cow::Borrowed(&set[2]),
                    direction: Direction::Up,
                    resume_from: 0,
                },
            ],
            phase: None,
            held_back: Vec::new(),
        };
        let rows = [row(1)];
        assert_eq!(current_after(&rows, &plan, &[]), 1);
        assert_eq!(current_after(&rows, &plan, &[2]), 2);
        assert_eq!(current_after(&rows, &plan, &[2, 3]), 3);
        let down = Plan {
            current: 3,
            target: 1,
            steps: vec![Step {
                migration: std::borrow::Cow::Borrowed(&set[2]),
                direction: Direction::Down,
                resume_from: 0,
            }],
            phase: None,
            held_back: Vec::new(),
        };
        assert_eq!(current_after(&[row(1), row(2), row(3)], &down, &[3]), 2);
        let mut d = row(3);
        d.dirty = true;
        assert_eq!(current_after(&[row(1), d], &down, &[]), 1);
    }
}

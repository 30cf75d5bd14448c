//! Where a run goes: up to a version, or down to one. `rollback --count N` starts as
//! [`Goal::DownBy`] and is fixed to the version it reaches on the first ledger read, so a run
//! that reconnects re-plans down to that same version, whatever it has undone meanwhile.

use super::{Allow, Phase, Plan, Rollback, down, up};
use crate::error::{Error, Result};
use crate::refusal::Refusal;
use crate::source::Migration;
use crate::store::ledger::AppliedRow;

/// Where a run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Apply pending migrations up to this version (`None`: the newest file).
    Up(Option<i64>),
    /// Undo every applied migration above this version (0: all).
    Down(i64),
    /// Undo the newest N applied migrations: becomes [`Goal::Down`] at the run's first read
    /// of the ledger.
    DownBy(usize),
    /// Undo every applied migration newer than the newest file of this image, with the undo
    /// the ledger keeps (`rollback --to-image`). The image's files do not change during a run,
    /// so this needs no fixing.
    ToImage,
}

impl From<Rollback> for Goal {
    fn from(how: Rollback) -> Goal {
        match how {
            Rollback::Count(n) => Goal::DownBy(n),
            Rollback::Target(v) => Goal::Down(v),
            Rollback::ToImage => Goal::ToImage,
        }
    }
}

impl Goal {
    /// The plan that reaches this goal from `rows` (`phase` cuts an upward plan).
    pub fn plan<'a>(
        self,
        set: &'a [Migration],
        rows: &[AppliedRow],
        allow: Allow,
        phase: Option<Phase>,
    ) -> Result<Plan<'a>> {
        match self {
            Goal::Up(target) => Ok(up(set, rows, target, allow)?.in_phase(phase)),
            Goal::Down(version) => down(set, rows, Rollback::Target(version), allow),
            Goal::DownBy(n) => down(set, rows, Rollback::Count(n), allow),
            Goal::ToImage => down(set, rows, Rollback::ToImage, allow),
        }
    }

    /// This goal with a count turned into the version it reaches on `rows`: the version below
    /// the newest N applied ones (0 when those are all). A count that does not fit what is
    /// applied is refused, as the plan refuses it.
    pub fn fixed(self, rows: &[AppliedRow]) -> Result<Goal> {
        let Goal::DownBy(n) = self else {
            return Ok(self);
        };
        if n == 0 || n > rows.len() {
            return Err(Error::Refused(Refusal::BadCount {
                count: n,
                applied: rows.len(),
            }));
        }
        let mut versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Goal::Down(versions.get(n).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::mig;

    fn row(version: i64) -> AppliedRow {
        AppliedRow {
            version,
            description: format!("m{version}"),
            applied_at: None,
            checksum: None,
            duration_ms: None,
            applied_by: None,
            fence: None,
            dirty: false,
            statements_done: 0,
            undo: Default::default(),
        }
    }

    #[test]
    fn a_count_is_fixed_to_the_version_below_the_newest_n() {
        let rows = [row(1), row(3), row(2)];
        assert_eq!(Goal::DownBy(1).fixed(&rows).ok(), Some(Goal::Down(2)));
        assert_eq!(Goal::DownBy(2).fixed(&rows).ok(), Some(Goal::Down(1)));
        assert_eq!(Goal::DownBy(3).fixed(&rows).ok(), Some(Goal::Down(0)));
        assert!(matches!(
            Goal::DownBy(4).fixed(&rows),
            Err(Error::Refused(Refusal::BadCount {
                count: 4,
                applied: 3
            }))
        ));
        assert!(Goal::DownBy(0).fixed(&rows).is_err());
        assert_eq!(Goal::Up(None).fixed(&rows).ok(), Some(Goal::Up(None)));
        assert_eq!(Goal::Down(1).fixed(&rows).ok(), Some(Goal::Down(1)));
    }

    #[test]
    fn the_fixed_goal_plans_what_the_count_planned() {
        let set = [mig(1), mig(2), mig(3)];
        let rows = [row(1), row(2), row(3)];
        for n in 1..=3 {
            let by_count = Goal::DownBy(n).plan(&set, &rows, Allow::default(), None);
            let fixed = Goal::DownBy(n).fixed(&rows).expect("fits");
            let by_version = fixed.plan(&set, &rows, Allow::default(), None);
            assert_eq!(by_count.ok(), by_version.ok(), "count {n}");
        }
    }
}

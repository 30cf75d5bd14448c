//! How a fleet ended: each target's outcome folded into counts, the failed targets with their
//! exit code and reason, and the fleet's exit code — 0 when none failed; else a permanent
//! failure's code (the first such target in list order) when there is one, so a Job's
//! `podFailurePolicy` fails the index; else the first transient one, so the index is retried
//! (and a rerun skips the targets already at the goal); 143 when a signal stopped it first.

use crate::error::{Error, Result};
use crate::exit::PodFailureAction;
use crate::report::Outcome;

/// A failed reason is cut to this many bytes (the termination message has 4096 in all).
const REASON_BYTES: usize = 400;

/// What became of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its run did work.
    Applied,
    /// Its run had nothing to do.
    UpToDate,
    /// Its run failed (or was stopped): exit code and reason.
    Failed(u8, String),
    /// It was never started (canary failed, failure budget spent, or a signal).
    NotStarted,
}

impl Verdict {
    /// The outcome's name as the events and the termination message give it.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::UpToDate => "up_to_date",
            Verdict::Failed(..) => "failed",
            Verdict::NotStarted => "not_started",
        }
    }
}

/// A failed target, as `fleet.finished` and the termination message list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedTarget {
    /// Its display name.
    pub target: String,
    /// Its run's exit code.
    pub exit_code: u8,
    /// Why (the error, cut to a few hundred bytes).
    pub reason: String,
}

/// Counts by outcome and the failed targets (in list order).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Targets whose run did work.
    pub applied: usize,
    /// Targets already at the goal.
    pub up_to_date: usize,
    /// Targets whose run failed or was stopped.
    pub failed: usize,
    /// Targets never started.
    pub not_started: usize,
    /// Targets in this shard's share.
    pub total: usize,
    /// Migrations applied (or undone) over every target.
    pub migrations: usize,
    /// The failed targets, in list order.
    pub failed_targets: Vec<FailedTarget>,
}

/// The error behind the fleet's exit code, and where in the list it was.
#[derive(Default)]
pub(crate) struct Worst {
    permanent: Option<(usize, Error)>,
    transient: Option<(usize, Error)>,
    failed_at: Vec<usize>,
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl Summary {
    /// Folds the outcome of target `index` (shown as `name`) in; returns its verdict.
    pub(crate) fn fold(
        &mut self,
        worst: &mut Worst,
        index: usize,
        name: &str,
        outcome: Outcome,
    ) -> Verdict {
        self.migrations += outcome.report.count();
        let verdict = match outcome.result {
            Ok(()) if outcome.report.count() > 0 => Verdict::Applied,
            Ok(()) => Verdict::UpToDate,
            Err(e) => {
                let exit = e.exit();
                let verdict = Verdict::Failed(exit.code(), cut(&e.to_string(), REASON_BYTES));
                let slot = match (e, exit.pod_failure_action()) {
                    (Error::Terminated, _) => None,
                    (e, PodFailureAction::FailJob) => Some((&mut worst.permanent, e)),
                    (e, _) => Some((&mut worst.transient, e)),
                };
                if let Some((slot, e)) = slot
                    && slot.as_ref().is_none_or(|(i, _)| index < *i)
                {
                    *slot = Some((index, e));
                }
                verdict
            }
        };
        match &verdict {
            Verdict::Applied => self.applied += 1,
            Verdict::UpToDate => self.up_to_date += 1,
            Verdict::Failed(code, reason) => {
                self.failed += 1;
                let at = worst.failed_at.partition_point(|i| *i < index);
                worst.failed_at.insert(at, index);
                self.failed_targets.insert(
                    at,
                    FailedTarget {
                        target: name.to_string(),
                        exit_code: *code,
                        reason: reason.clone(),
                    },
                );
            }
            Verdict::NotStarted => self.not_started += 1,
        }
        verdict
    }

    /// The fleet's result: `Ok` when no target failed and none was left by a signal; else
    /// the error whose exit code is the fleet's (see the module docs).
    pub(crate) fn result(&self, worst: Worst, signalled: bool) -> Result<()> {
        let unfinished = self.failed + self.not_started > 0;
        if signalled && unfinished {
            return Err(Error::Terminated);
        }
        match (worst.permanent, worst.transient) {
            (Some((_, e)), _) | (None, Some((_, e))) => Err(e),
            (None, None) if self.failed > 0 || self.not_started > 0 => Err(Error::Terminated),
            (None, None) => Ok(()),
        }
    }
}

/// The result of many targets' results (in list order) by the fleet's rule: `Ok` when all
/// succeeded, else the first permanent failure, else the first transient one.
pub fn worst(results: impl IntoIterator<Item = Result<()>>) -> Result<()> {
    let (mut summary, mut worst) = (Summary::default(), Worst::default());
    for (i, result) in results.into_iter().enumerate() {
        let report = crate::report::Report::default();
        summary.fold(&mut worst, i, "", Outcome { report, result });
    }
    summary.result(worst, false)
}

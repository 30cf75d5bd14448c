//! The scheduler: at most `parallelism` targets in flight, the canary wave first (the rest
//! start only when every canary succeeded), no new start once `MIGRATE_MAX_FAILURES` targets
//! failed or a signal came; targets already running are always finished. A signal reaches the
//! runs through their own [`Stop`]s: cancel (start nothing new) then, past the grace, abandon.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::report::Outcome;
use crate::run::Stop;

/// The scheduling settings of one process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Targets in flight at once (at least 1).
    pub parallelism: usize,
    /// The first `canary` targets run before any other.
    pub canary: usize,
    /// No new target starts once this many failed.
    pub max_failures: Option<usize>,
    /// How often [`Scheduled::tick`] is called (`None`: never).
    pub progress: Option<Duration>,
}

/// The stops of the runs in flight, shared with whoever asks whether one is working.
#[derive(Clone, Default)]
pub(crate) struct Running(Arc<Mutex<Vec<(usize, Stop)>>>);

impl Running {
    fn add(&self, index: usize, stop: Stop) {
        if let Ok(mut v) = self.0.lock() {
            v.push((index, stop));
        }
    }

    fn remove(&self, index: usize) {
        if let Ok(mut v) = self.0.lock() {
            v.retain(|(i, _)| *i != index);
        }
    }

    fn each(&self, f: impl Fn(&Stop)) {
        if let Ok(v) = self.0.lock() {
            v.iter().for_each(|(_, s)| f(s));
        }
    }

    /// Whether a run in flight is inside a migration step (the signal grace applies).
    pub(crate) fn is_working(&self) -> bool {
        self.0
            .lock()
            .is_ok_and(|v| v.iter().any(|(_, s)| s.is_working()))
    }
}

/// What the scheduler drives: starting target `index`, and hearing how each ended.
pub(crate) trait Scheduled {
    /// The run of target `index`: its stop handle and its future.
    fn start(&mut self, index: usize) -> (Stop, impl Future<Output = Outcome> + 'static);
    /// Target `index` ended; returns whether it failed.
    fn done(&mut self, index: usize, outcome: Outcome) -> bool;
    /// Every progress interval.
    fn tick(&mut self);
}

/// Runs targets `0..n` of `work` under `limits`, stopped through `stop`; returns how many were
/// started (the rest were not: canary failed, failure budget spent, or a signal).
pub(crate) async fn schedule(
    n: usize,
    limits: Limits,
    stop: &Stop,
    running: &Running,
    work: &mut impl Scheduled,
) -> usize {
    let mut in_flight = FuturesUnordered::new();
    let (mut next, mut failed, mut canaries_left) = (0, 0, limits.canary.min(n));
    let mut canary_failed = false;
    let (mut cancelled, mut abandoned) = (false, false);
    let abandon = stop.or_abandoned(std::future::pending::<crate::error::Result<()>>());
    tokio::pin!(abandon);
    let period = limits.progress.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let budget_left = limits.max_failures.is_none_or(|m| failed < m);
        while in_flight.len() < limits.parallelism.max(1)
            && next < n
            && budget_left
            && !canary_failed
            && !stop.is_cancelled()
            && (next < limits.canary || canaries_left == 0)
        {
            let (run_stop, run) = work.start(next);
            running.add(next, run_stop);
            let index = next;
            in_flight.push(async move { (index, run.await) });
            next += 1;
        }
        if in_flight.is_empty() {
            return next;
        }
        tokio::select! {
            biased;
            _ = stop.token().cancelled(), if !cancelled => {
                cancelled = true;
                running.each(Stop::cancel);
            }
            _ = &mut abandon, if !abandoned => {
                abandoned = true;
                running.each(Stop::abandon);
            }
            Some((index, outcome)) = in_flight.next() => {
                running.remove(index);
                let did_fail = work.done(index, outcome);
                failed += usize::from(did_fail);
                if index < limits.canary {
                    canaries_left -= 1;
                    canary_failed |= did_fail;
                }
            }
            _ = ticker.tick(), if limits.progress.is_some() => work.tick(),
        }
    }
}

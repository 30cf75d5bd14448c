//! The fleet's own events: `fleet.started`, `fleet.progress`, `fleet.target_finished` (inside
//! the target's span, so it carries `target`) and `fleet.finished`. Each is logged as it
//! happens; nothing is buffered.

use std::time::Instant;

use super::summary::{Summary, Verdict};
use crate::config::FleetSettings;
use crate::error::Result;
use crate::log::events;

/// `fleet.started`: this shard's share out of the listed targets.
pub(super) fn started(s: &FleetSettings, total: usize, listed: usize) {
    tracing::info!(
        event = events::FLEET_STARTED,
        targets = total,
        listed,
        shard = s.shard,
        shards = s.shards,
        parallelism = s.parallelism,
        canary = s.canary,
        max_failures = s.max_failures,
        "fleet of {total} target(s) (shard {} of {}, {listed} listed), {} at a time",
        s.shard,
        s.shards,
        s.parallelism
    );
}

/// `fleet.progress`: targets done out of the total.
pub(super) fn progress(s: &Summary) {
    let done = s.applied + s.up_to_date + s.failed;
    tracing::info!(
        event = events::FLEET_PROGRESS,
        done,
        total = s.total,
        failed = s.failed,
        "{done} of {} target(s) done, {} failed",
        s.total,
        s.failed
    );
}

/// `fleet.target_finished`, in the target's span.
pub(super) fn target_finished(name: &str, verdict: &Verdict, applied: usize) {
    let span = tracing::error_span!("target", target = %name);
    let _in = span.enter();
    match verdict {
        Verdict::Failed(code, reason) => tracing::error!(
            event = events::FLEET_TARGET_FINISHED,
            outcome = verdict.name(),
            exit_code = code,
            applied,
            reason = %reason,
            "target failed (exit {code}): {reason}"
        ),
        _ => tracing::info!(
            event = events::FLEET_TARGET_FINISHED,
            outcome = verdict.name(),
            applied,
            "target {}",
            verdict.name()
        ),
    }
}

/// `fleet.finished`: counts, and the failed targets as JSON text (the JSON log writes it as
/// the array it holds: `cli/span_fields.rs`).
pub(super) fn finished(s: &Summary, result: &Result<()>, started: Instant) {
    let failed_targets = serde_json::to_string(&s.failed_targets).unwrap_or_default();
    let exit_code = match result {
        Ok(()) => 0,
        Err(e) => e.exit().code(),
    };
    tracing::info!(
        event = events::FLEET_FINISHED,
        exit_code,
        applied = s.applied,
        up_to_date = s.up_to_date,
        failed = s.failed,
        not_started = s.not_started,
        total = s.total,
        migrations = s.migrations,
        duration_ms = started.elapsed().as_millis() as u64,
        failed_targets = %failed_targets,
        "fleet finished: {} applied, {} up to date, {} failed, {} not started, of {}",
        s.applied,
        s.up_to_date,
        s.failed,
        s.not_started,
        s.total
    );
}

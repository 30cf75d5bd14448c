//! The end of a run: `run.finished`, the error on stderr, the one-line JSON termination
//! message (Kubernetes shows it in the pod's status) and the process exit code, all from the
//! one exit table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crdb_migrate::{Error, Exit, FleetOutcome, Report, events};

/// Kubernetes keeps at most this many bytes of a termination message.
const TERMINATION_BYTES: usize = 4096;

/// The termination-message path straight from the environment, for exits that happen before
/// the settings are valid (read as [`super::settings::termination_log`] reads it).
pub(crate) fn env_termination_log() -> Option<PathBuf> {
    let value = std::env::var("MIGRATE_TERMINATION_LOG").ok();
    super::settings::termination_log(value.filter(|p| !p.is_empty()))
}

/// Logs `run.finished`, prints the error, writes the termination message, picks the exit code.
pub(crate) fn finish(
    result: Result<(), Error>,
    report: &Report,
    started: Instant,
    termination: Option<&Path>,
) -> ExitCode {
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(e) => e.exit(),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let error = result.as_ref().err().map(|e| e.to_string());
    match &error {
        // Two calls: tracing levels must be constants.
        None => tracing::info!(
            event = events::RUN_FINISHED,
            exit_code = exit.code(),
            reason = exit.name(),
            applied = report.count(),
            version = report.current,
            contract_waiting = report.contract_waiting,
            duration_ms,
            "run finished"
        ),
        Some(e) => {
            tracing::error!(
                event = events::RUN_FINISHED,
                exit_code = exit.code(),
                reason = exit.name(),
                applied = report.count(),
                version = report.current,
                contract_waiting = report.contract_waiting,
                duration_ms,
                error = %e,
                "run failed"
            );
            eprintln!("error: {e}");
        }
    }
    if let Some(path) = termination {
        let message = serde_json::json!({
            "exit_code": exit.code(),
            "reason": exit.name(),
            "version": report.current,
            "applied": report.count(),
            "duration_ms": duration_ms,
            "error": error,
        });
        let _ = std::fs::write(path, format!("{message}\n"));
    }
    ExitCode::from(exit.code())
}

/// The end of a fleet's `migrate` or `rollback` (`fleet.finished` was logged by the fleet):
/// the error on stderr, the termination message with the counts by outcome and as many failed
/// targets as fit in Kubernetes' 4096 bytes (`more_failed`: how many did not), the exit code.
pub(crate) fn finish_fleet(
    outcome: FleetOutcome,
    started: Instant,
    termination: Option<&Path>,
) -> ExitCode {
    let FleetOutcome { summary, result } = outcome;
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(e) => e.exit(),
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    if let Some(e) = &error {
        eprintln!("error: {e}");
    }
    if let Some(path) = termination {
        let message = fleet_message(&summary, exit, error.as_deref(), started);
        let _ = std::fs::write(path, format!("{message}\n"));
    }
    ExitCode::from(exit.code())
}

/// The fleet's termination message, at most [`TERMINATION_BYTES`] with its newline.
fn fleet_message(
    s: &crdb_migrate::fleet::Summary,
    exit: Exit,
    error: Option<&str>,
    started: Instant,
) -> serde_json::Value {
    let mut message = serde_json::json!({
        "exit_code": exit.code(),
        "reason": exit.name(),
        "version": null,
        "applied": s.migrations,
        "duration_ms": started.elapsed().as_millis() as u64,
        "error": error.map(|e| cut(e, 512)),
        "targets": {
            "applied": s.applied,
            "up_to_date": s.up_to_date,
            "failed": s.failed,
            "not_started": s.not_started,
            "total": s.total,
        },
    });
    // Room for `"failed_targets":[],"more_failed":NNNNNN` and the newline.
    let mut room = TERMINATION_BYTES - 48 - message.to_string().len();
    let mut listed = Vec::new();
    for f in &s.failed_targets {
        let entry = serde_json::json!({
            "target": cut(&f.target, 200),
            "exit_code": f.exit_code,
            "reason": cut(&f.reason, 200),
        });
        let len = entry.to_string().len() + 1;
        if len > room {
            break;
        }
        room -= len;
        listed.push(entry);
    }
    let more = s.failed_targets.len() - listed.len();
    message["failed_targets"] = serde_json::Value::Array(listed);
    if more > 0 {
        message["more_failed"] = more.into();
    }
    message
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

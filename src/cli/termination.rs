//! The end of a run: `run.finished`, the error on stderr, the one-line JSON termination
//! message (Kubernetes shows it in the pod's status) and the process exit code, all from the
//! one exit table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crdb_migrate::{Error, Exit, Report, events};

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

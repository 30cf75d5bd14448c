//! The exit codes (docs/commands.md lists them), the one table from errors to exit codes ([`of`]),
//! and the Kubernetes Job `podFailurePolicy` action each code calls for: what `main`, the
//! termination message and the deploy manifests agree on.

use crate::error::Error;

/// The exit code for an outcome: the one table from [`Error`] variants to exit codes.
pub fn of(e: &Error) -> Exit {
    match e {
        Error::Config { .. }
        | Error::StrictVerify
        | Error::Source(_)
        | Error::ForeignLayout(_)
        | Error::Import(_)
        | Error::Url { .. }
        | Error::NoDatabase(_)
        | Error::Refused(_)
        | Error::Io { .. } => Exit::BadInput,
        // The process could not set itself up: no retry can help, as with bad input.
        Error::Runtime(_) | Error::Signals | Error::Clock(_) => Exit::BadInput,
        Error::Unreachable { .. } | Error::ConnectionLost { .. } => Exit::Unreachable,
        Error::Auth(_) | Error::Tls(_) => Exit::AuthRejected,
        Error::LeaseTimeout { .. } | Error::WaitTimeout { .. } | Error::JobWaitTimeout { .. } => {
            Exit::Timeout
        }
        Error::LeaseLost { .. } => Exit::LeaseLost,
        Error::RetriesExhausted { .. } => Exit::RetriesExhausted,
        // A bookkeeping statement the server refused (no permission to create the ledger, ...).
        Error::MigrationFailed(_) | Error::Database { .. } => Exit::MigrationFailed,
        Error::PartiallyApplied { .. } => Exit::PartiallyApplied,
        Error::Disagreement(_) | Error::BackgroundJob { .. } => Exit::Disagreement,
        Error::Terminated => Exit::Terminated,
        Error::UndoTest { .. } => Exit::UndoTestFailed,
    }
}

/// What a Kubernetes Job's `podFailurePolicy` should do with a pod that exited with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFailureAction {
    /// Success: nothing to do.
    None,
    /// Transient: count the failure against `backoffLimit` and retry.
    Count,
    /// Permanent: fail the Job at once, retrying cannot help.
    FailJob,
}

/// Every exit code the binary can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0: done, the database is at the target (or there was nothing to do).
    Ok = 0,
    /// 10: the database was unreachable or not ready within `MIGRATE_WAIT_TIMEOUT`.
    Unreachable = 10,
    /// 11: the lease was not acquired, or `wait` did not see its version, within the timeout.
    Timeout = 11,
    /// 12: the lease was lost while working (fenced off).
    LeaseLost = 12,
    /// 13: serialization retries (SQLSTATE 40001) exhausted.
    RetriesExhausted = 13,
    /// 20: bad configuration or bad migration files.
    BadInput = 20,
    /// 21: authentication or TLS rejected.
    AuthRejected = 21,
    /// 30: a migration's SQL failed and was rolled back.
    MigrationFailed = 30,
    /// 31: a migration was left partly applied and marked dirty.
    PartiallyApplied = 31,
    /// 32: the database disagrees with the image (drift, dirty mark, unknown versions).
    Disagreement = 32,
    /// 33: `test` found an undo that fails or does not restore the schema.
    UndoTestFailed = 33,
    /// 143: stopped by SIGTERM/SIGINT after cleaning up.
    Terminated = 143,
}

impl Error {
    /// The exit code for this error, from the one table from errors to exit codes (`of`).
    /// Defined here, beside the table, so that the error type does not depend on it.
    pub fn exit(&self) -> Exit {
        of(self)
    }
}

impl Exit {
    /// All exit codes, in ascending order.
    pub const ALL: [Exit; 12] = [
        Exit::Ok,
        Exit::Unreachable,
        Exit::Timeout,
        Exit::LeaseLost,
        Exit::RetriesExhausted,
        Exit::BadInput,
        Exit::AuthRejected,
        Exit::MigrationFailed,
        Exit::PartiallyApplied,
        Exit::Disagreement,
        Exit::UndoTestFailed,
        Exit::Terminated,
    ];

    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What a Job's `podFailurePolicy` should do with this exit code (`FailJob` when retrying
    /// cannot help, `Count` when a retry may succeed; docs/kubernetes.md).
    pub fn pod_failure_action(self) -> PodFailureAction {
        match self {
            Exit::Ok => PodFailureAction::None,
            Exit::Unreachable
            | Exit::Timeout
            | Exit::LeaseLost
            | Exit::RetriesExhausted
            | Exit::Terminated => PodFailureAction::Count,
            Exit::BadInput
            | Exit::AuthRejected
            | Exit::MigrationFailed
            | Exit::PartiallyApplied
            | Exit::Disagreement
            | Exit::UndoTestFailed => PodFailureAction::FailJob,
        }
    }

    /// A short machine-readable name, used as `reason` in the termination message.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Unreachable => "database_unreachable",
            Exit::Timeout => "timeout",
            Exit::LeaseLost => "lease_lost",
            Exit::RetriesExhausted => "retries_exhausted",
            Exit::BadInput => "bad_input",
            Exit::AuthRejected => "auth_rejected",
            Exit::MigrationFailed => "migration_failed",
            Exit::PartiallyApplied => "partially_applied",
            Exit::Disagreement => "database_disagrees",
            Exit::UndoTestFailed => "undo_test_failed",
            Exit::Terminated => "terminated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_map_to_their_codes() {
        assert_eq!(of(&Error::Auth("x".into())).code(), 21);
        assert_eq!(of(&Error::Tls("x".into())).code(), 21);
        assert_eq!(of(&Error::NoDatabase("x".into())).code(), 20);
        let u = Error::Unreachable {
            attempts: 1,
            waited: std::time::Duration::ZERO,
            last: String::new(),
        };
        assert_eq!(of(&u).code(), 10);
        let lost = Error::ConnectionLost {
            context: "x".into(),
            message: "reset".into(),
            source: None,
        };
        assert_eq!(of(&lost).code(), 10);
    }

    #[test]
    fn a_failed_undo_test_fails_the_job_with_33() {
        let e = Error::UndoTest {
            failed: 1,
            checked: 3,
        };
        assert_eq!(of(&e).code(), 33);
        assert_eq!(of(&e).name(), "undo_test_failed");
        assert_eq!(of(&e).pod_failure_action(), PodFailureAction::FailJob);
        assert!(e.to_string().contains("1 of 3 migration(s)"), "{e}");
    }

    #[test]
    fn process_and_strict_verify_failures_are_bad_input() {
        // RFC 2822 cannot write a year before 1900: a formatting error, as a broken clock gives.
        let clock = time::macros::datetime!(1800-01-01 0:00 UTC)
            .format(&time::format_description::well_known::Rfc2822)
            .expect_err("year 1800");
        let errors = [
            Error::StrictVerify,
            Error::Signals,
            Error::Runtime(std::io::Error::other("no")),
            Error::Clock(clock),
        ];
        for e in errors {
            assert_eq!(of(&e), Exit::BadInput, "{e}");
        }
    }

    #[test]
    fn codes_are_unique_and_sorted() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}

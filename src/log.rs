//! Logging: tracing-subscriber set up for JSON lines (default) or text, and the list of event
//! names every log line's `event` field takes (SPEC §7).

use crate::config::LogFormat;

/// The `event` names of SPEC §7, in one place.
pub mod events {
    /// A failed connection attempt while waiting for the database.
    pub const DB_WAIT: &str = "db.wait";
    /// Connected, authenticated, `SELECT version()` answered.
    pub const DB_READY: &str = "db.ready";
    /// The lease was taken.
    pub const LEASE_ACQUIRED: &str = "lease.acquired";
    /// The lease was waited for (someone else holds it).
    pub const LEASE_WAITING: &str = "lease.waiting";
    /// The lease was renewed by the heartbeat.
    pub const LEASE_RENEWED: &str = "lease.renewed";
    /// A heartbeat could not renew the lease (not yet lost: the fenced commit decides).
    pub const LEASE_RENEW_FAILED: &str = "lease.renew_failed";
    /// Releasing the lease failed or timed out; it expires by itself.
    pub const LEASE_RELEASE_FAILED: &str = "lease.release_failed";
    /// The lease was lost.
    pub const LEASE_LOST: &str = "lease.lost";
    /// The lease was released.
    pub const LEASE_RELEASED: &str = "lease.released";
    /// A migration (or undo) began.
    pub const MIGRATION_STARTED: &str = "migration.started";
    /// A migration was applied and recorded.
    pub const MIGRATION_APPLIED: &str = "migration.applied";
    /// A migration was retried after SQLSTATE 40001.
    pub const MIGRATION_RETRY: &str = "migration.retry";
    /// A migration failed.
    pub const MIGRATION_FAILED: &str = "migration.failed";
    /// A migration was undone and its row removed.
    pub const MIGRATION_ROLLED_BACK: &str = "migration.rolled_back";
    /// A migration was marked dirty.
    pub const MIGRATION_DIRTY: &str = "migration.dirty";
    /// A repair action.
    pub const REPAIR: &str = "repair";
    /// The run is over.
    pub const RUN_FINISHED: &str = "run.finished";
    /// A signal arrived.
    pub const RUN_SIGNAL: &str = "run.signal";
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Standard output (commands whose work is the log: migrate, rollback, wait, repair).
    Stdout,
    /// Standard error (commands whose product is on stdout: status, plan, verify, create).
    Stderr,
}

/// Installs the global subscriber. Safe to call once per process; later calls do nothing.
pub fn init(format: LogFormat, filter: &str, sink: Sink) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match (format, sink) {
        (LogFormat::Json, Sink::Stdout) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (LogFormat::Json, Sink::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (LogFormat::Text, Sink::Stdout) => builder
            .with_ansi(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (LogFormat::Text, Sink::Stderr) => builder
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // Already installed (a library caller set up its own): keep theirs.
    let _ = result;
}

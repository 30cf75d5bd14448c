//! The one list of event names (docs/commands.md, "Logs"): every log line's `event` field comes
//! from here. Setting up the subscriber (JSON or text, stdout or stderr) is the binary's business.

/// The `event` names of the JSON log lines, in one place.
pub mod events {
    /// A failed connection attempt while waiting for the database.
    pub const DB_WAIT: &str = "db.wait";
    /// Connected, authenticated, `SELECT version()` answered.
    pub const DB_READY: &str = "db.ready";
    /// `MIGRATE_CREATE_DATABASE` created the URL's database (or found it made by a peer).
    pub const DB_CREATED: &str = "db.created";
    /// A database connection ended (debug level).
    pub const DB_CONNECTION_CLOSED: &str = "db.connection_closed";
    /// A lost connection was re-established mid-run.
    pub const DB_RECONNECTED: &str = "db.reconnected";
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
    /// A ledger made by an older tool was adopted (columns added, rows kept).
    pub const LEDGER_ADOPTED: &str = "ledger.adopted";
    /// A setup statement lost a race to a concurrent runner; re-checking.
    pub const SETUP_RACE: &str = "setup.race";
    /// A migration (or undo) began.
    pub const MIGRATION_STARTED: &str = "migration.started";
    /// A migration was applied and recorded.
    pub const MIGRATION_APPLIED: &str = "migration.applied";
    /// A migration was retried after SQLSTATE 40001.
    pub const MIGRATION_RETRY: &str = "migration.retry";
    /// One run of a `@REPEAT_UNTIL_ZERO` statement finished.
    pub const MIGRATION_BATCH: &str = "migration.batch";
    /// A migration failed.
    pub const MIGRATION_FAILED: &str = "migration.failed";
    /// A long migration statement is still running: its elapsed time and what the server
    /// says of its progress (`pg_stat_progress_*`, CockroachDB jobs).
    pub const MIGRATION_PROGRESS: &str = "migration.progress";
    /// A CockroachDB schema-change job on our database's tables was found at start
    /// (running, paused, reverting, ...).
    pub const JOB_FOUND: &str = "job.found";
    /// Waiting for running CockroachDB schema-change jobs to finish before migrating.
    pub const JOB_WAITING: &str = "job.waiting";
    /// The schema-change jobs waited for are no longer running.
    pub const JOB_DONE: &str = "job.done";
    /// CockroachDB schema-change jobs cannot be listed (or only some of them): why, and the
    /// run goes on without waiting for them.
    pub const JOB_UNLISTED: &str = "job.unlisted";
    /// A migration was undone and its row removed.
    pub const MIGRATION_ROLLED_BACK: &str = "migration.rolled_back";
    /// A migration was marked dirty.
    pub const MIGRATION_DIRTY: &str = "migration.dirty";
    /// Files recorded as applied without running (`baseline`).
    pub const BASELINE: &str = "baseline";
    /// A repair action.
    pub const REPAIR: &str = "repair";
    /// `create` wrote a placeholder the user must edit.
    pub const CREATE_PLACEHOLDER: &str = "create.placeholder";
    /// `wait` polled and the version is not there yet.
    pub const WAIT_POLLING: &str = "wait.polling";
    /// `wait` saw its version applied.
    pub const WAIT_REACHED: &str = "wait.reached";
    /// Nothing to apply or undo.
    pub const RUN_NOTHING_TO_DO: &str = "run.nothing_to_do";
    /// The live schema differs from the one stored after the last run that did work.
    pub const SCHEMA_DRIFT: &str = "schema.drift";
    /// A run that did work could not store the schema snapshot (drift is not checked until
    /// the next one stores it).
    pub const SCHEMA_NOT_STORED: &str = "schema.not_stored";
    /// The run is over.
    pub const RUN_FINISHED: &str = "run.finished";
    /// A signal arrived.
    pub const RUN_SIGNAL: &str = "run.signal";
    /// A fleet began: its share of the targets, the shard, the parallelism, the canary wave.
    pub const FLEET_STARTED: &str = "fleet.started";
    /// A fleet's progress (every `MIGRATE_PROGRESS_INTERVAL`): targets done out of the total.
    pub const FLEET_PROGRESS: &str = "fleet.progress";
    /// One target of a fleet ended: its outcome (and exit code and reason when it failed).
    pub const FLEET_TARGET_FINISHED: &str = "fleet.target_finished";
    /// A fleet ended: counts by outcome and the failed targets.
    pub const FLEET_FINISHED: &str = "fleet.finished";
}

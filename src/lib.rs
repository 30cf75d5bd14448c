//! crdb-migrate: applies SQL schema migrations to CockroachDB (and PostgreSQL), built to run
//! from inside Kubernetes as an init container, a Helm hook Job or a rollout Job.
//!
//! The library offers its operations on a [`Migrator`]: create a migration file,
//! load the migrations, migrate (optionally to a target) returning how many were applied,
//! roll back by count or to a target returning how many were undone, the current version,
//! whether a version is applied, and the applied migrations with `applied_at`.
//!
//! ```no_run
//! use crdb_migrate::{Config, Migrator, Rollback};
//!
//! # async fn example() -> Result<(), crdb_migrate::Error> {
//! let config = Config::new(
//!     Some("postgresql://root@localhost:26257/app?sslmode=disable".into()),
//!     "migrations",
//! );
//! let migrator = Migrator::new(config);
//!
//! // Create a migration file: migrations/<UTC timestamp>_create_users_table.sql
//! let path = migrator.create(
//!     "create users table",
//!     Some("CREATE TABLE users (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), name STRING NOT NULL);"),
//!     Some("DROP TABLE users;"),
//! )?;
//! println!("created {}", path.display());
//!
//! // Load them (every problem in the set is reported at once).
//! for m in migrator.load()? {
//!     println!("{} {}", m.version, m.description);
//! }
//!
//! // Apply everything pending, or up to a target version.
//! let applied = migrator.migrate(None).await?;
//! println!("applied {applied} migration(s)");
//!
//! // Where are we?
//! let current = migrator.current_version().await?;
//! assert!(migrator.is_applied(current).await? || current == 0);
//! for row in migrator.applied().await? {
//!     println!("{} {} applied at {:?}", row.version, row.description, row.applied_at);
//! }
//!
//! // Roll back the newest one, or everything above a version (0: all).
//! let undone = migrator.rollback(Rollback::Count(1)).await?;
//! let undone_all = migrator.rollback(Rollback::Target(0)).await?;
//! println!("undid {undone} then {undone_all}");
//! # Ok(())
//! # }
//! ```
//!
//! A [`Run`] is one `migrate` or `rollback` of one database, as a value: built from a
//! [`Config`] and a [`Goal`], stopped through its [`Stop`] and taken with [`Run::run`], which
//! returns its [`Outcome`]: the [`Report`] of what it did (kept when it fails part-way) and
//! how it ended. Each run has its own connections, lease, stop handle and report, so several
//! can be taken at once in one process:
//!
//! ```no_run
//! use crdb_migrate::{Config, Goal, Run};
//!
//! # async fn example() {
//! let run = |url: &str| Run::new(Config::new(Some(url.into()), "migrations"), Goal::Up(None));
//! let (a, b) = (run("postgresql://root@a:26257/app"), run("postgresql://root@b:26257/app"));
//! let stops = [a.stop(), b.stop()]; // on SIGTERM: cancel() each, abandon() past the grace
//! let (a, b) = tokio::join!(a.run(), b.run());
//! println!("a applied {:?} ({:?})", a.report.versions, a.result);
//! println!("b applied {:?} ({:?})", b.report.versions, b.result);
//! # drop(stops);
//! # }
//! ```
//!
//! A [`Fleet`] is many runs: the targets its settings name (a file or a query; databases, or
//! schemas of one database), this shard's share of them, each migrated by a [`Run`] of its own
//! with bounded parallelism, the files loaded once for all; [`Fleet::run`] returns a
//! [`FleetOutcome`] with counts by outcome, the failed targets and the fleet's result.
#![deny(missing_docs)]

// The flow of one run: config → source → connect → store → plan → session → apply → report.
mod apply;
mod backoff;
mod baseline;
pub mod blocking;
mod config;
mod connect;
mod create;
mod error;
mod exit;
mod flavour;
pub mod fleet;
pub mod import;
mod lint;
mod log;
mod migrator;
mod pipeline;
mod plan;
mod refusal;
mod repair;
mod report;
mod run;
mod session;
mod source;
mod sqlstate;
mod status;
mod store;
mod wait;
// helper modules: add new `mod` lines below this one.
mod duration;
mod jobs;
mod phase;
mod progress;
mod snapshot;
mod table_name;
mod undo_test;

use source::split;

// The public API: what a library caller names to drive a run, flat at the top; the parts of
// those values, grouped by what they describe, in the namespaces below. Everything else is
// private to the crate.
pub use baseline::Baseline;
pub use config::{Config, FleetSettings, Overrides, TargetSource, parse_version};
pub use duration::parse_duration;
pub use error::{Error, Result};
pub use exit::Exit;
pub use fleet::{Fleet, FleetOutcome};
pub use lint::Warning;
pub use log::events;
pub use migrator::Migrator;
pub use plan::{Goal, Plan, Rollback};
pub use repair::Repair;
pub use report::{Outcome, Report};
pub use run::{Run, Stop};
pub use snapshot::Snapshot;
pub use source::Migration;
pub use status::Status;
pub use store::TableName;
pub use undo_test::UndoReport;

/// What can be wrong: the payloads of [`Error`]'s variants.
pub mod problems {
    pub use crate::error::{FailedStatement, SqlFailure};
    pub use crate::refusal::{Disagreement, MissingUndo, Refusal};
    pub use crate::source::Problem;
}

/// The parts of the values a [`Migrator`] returns: a [`Plan`]'s
/// steps, a [`Status`]'s rows, the ledger's and the lease's rows, a
/// [`Warning`]'s severity and an [`Exit`]'s pod failure action.
pub mod parts {
    pub use crate::exit::PodFailureAction;
    pub use crate::jobs::Job;
    pub use crate::lint::Severity;
    pub use crate::plan::{Direction, Phase, Step};
    pub use crate::snapshot::{Change, Parts};
    pub use crate::status::{PhaseStatus, State, StatusRow};
    pub use crate::store::lease::LeaseInfo;
    pub use crate::store::ledger::{AppliedRow, StoredUndo};
    pub use crate::undo_test::{Checked, Verdict};
}

/// Reaching the database on its own, without a [`Migrator`]: the parsed URL
/// and the wait-and-connect loop every run starts with.
pub mod connection {
    pub use crate::connect::{DbUrl, Flavour, ServerInfo, wait_and_connect};
}

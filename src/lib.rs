//! crdb-migrate: applies SQL schema migrations to CockroachDB (and PostgreSQL), built to run
//! from inside Kubernetes as an init container, a Helm hook Job or a rollout Job.
#![deny(missing_docs)]

pub mod apply;
pub mod config;
pub mod connect;
pub mod error;
pub mod exit;
pub mod flavour;
pub mod lease;
pub mod ledger;
pub mod lint;
pub mod log;
pub mod migrator;
pub mod plan;
pub mod report;
pub mod source;
pub mod split;
// helper modules: add new `pub mod` lines below this one.

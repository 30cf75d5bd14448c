//! crdb-migrate: applies SQL schema migrations to CockroachDB (and PostgreSQL), built to run
//! from inside Kubernetes as an init container, a Helm hook Job or a rollout Job.
#![deny(missing_docs)]

pub mod connect;
pub mod exit;
pub mod lint;
pub mod source;
pub mod split;
// helper modules: add new `pub mod` lines below this one.

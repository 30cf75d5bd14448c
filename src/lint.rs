//! Offline checks for `verify`: irreversible migrations and what CockroachDB cannot run
//! atomically inside one transaction.
//!
//! STUB: being written; the signatures below are the contract.

use crate::source::Migration;

/// A warning about one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The migration's version.
    pub version: i64,
    /// The rule that fired, e.g. `irreversible`, `multiple_schema_changes`.
    pub rule: &'static str,
    /// The 1-based index of the statement at fault, when one is.
    pub statement: Option<usize>,
    /// What is wrong, naming the file and statement, and the fix.
    pub message: String,
}

/// Lints one migration.
pub fn lint(_m: &Migration) -> Vec<Warning> {
    Vec::new()
}

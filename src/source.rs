//! Migration files: names, the `-- @UNDO` split, directives, checksums, the `ENVIRONMENT`
//! sub-directory merge, and every problem in a set listed at once.
//!
//! STUB: being written; the signatures below are the contract.

use std::path::{Path, PathBuf};

/// One migration file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The version from the file name (positive, fits INT8).
    pub version: i64,
    /// The description part of the file name, as written (`[a-z0-9_]+`).
    pub slug: String,
    /// The human description: the slug with `_` read as a space.
    pub description: String,
    /// Where the file is.
    pub path: PathBuf,
    /// The forward SQL (directive lines removed).
    pub up: String,
    /// The undo SQL after `-- @UNDO`; `None` when the file has no marker (irreversible).
    pub down: Option<String>,
    /// `-- @NO_TRANSACTION` was given.
    pub no_transaction: bool,
    /// SHA-256 hex of the normalised forward and undo SQL.
    pub checksum: String,
}

/// A problem with one file of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub path: PathBuf,
    /// The 1-based line, when one line is at fault.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Loads `dir` (plus `dir/<environment>/` when it exists), sorted by version.
pub fn load(_dir: &Path, _environment: Option<&str>) -> Result<Vec<Migration>, Vec<Problem>> {
    Ok(Vec::new())
}

/// TEMPORARY STUB (replaced by the real module).
pub fn slugify(d: &str) -> Option<String> {
    Some(d.to_string())
}
/// TEMPORARY STUB.
pub fn parse_name(_n: &str) -> Result<(i64, String), String> {
    Err(String::new())
}
/// TEMPORARY STUB.
pub fn render(up: &str, _undo: Option<&str>) -> String {
    up.to_string()
}
/// TEMPORARY STUB.
pub fn file_name(v: i64, s: &str) -> String {
    format!("{v}_{s}.sql")
}

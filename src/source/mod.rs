//! Migration files: names, the `-- @UNDO` split, directives, checksums, the `ENVIRONMENT`
//! sub-directory merge, and every problem in a set listed at once.
//!
//! # File format
//! A file is named `<version>_<description>.sql`: the version is ASCII digits, positive, fitting
//! a signed 64-bit integer (leading zeros allowed, `001_init.sql` is version 1); the description
//! is `[a-z0-9_]+`. Hidden files, sub-directories and files not ending in `.sql` are ignored (the
//! `ENVIRONMENT` sub-directory aside); a `.sql` file with any other name is a problem.
//!
//! The body is the forward SQL, then optionally a line holding exactly `-- @UNDO` (surrounding
//! whitespace aside), then the undo SQL. Without the marker the migration is irreversible
//! (`down` is `None`); with a marker but no undo statement, `down` is `Some("")`, a no-op undo.
//! An empty forward section (whitespace and comments only) is a no-op forward: a down-only
//! migration. A file with no statement at all and no marker is a no-op both ways (`down` is
//! `Some("")`), a version placeholder.
//!
//! Directives are comment lines before the first SQL statement of the file (blank lines and
//! ordinary comments may precede or follow them):
//! - `-- @NO_TRANSACTION`: each statement then runs on its own, autocommitted.
//! - `-- @STATEMENT_TIMEOUT <duration>`, `-- @LOCK_TIMEOUT <duration>` (`500ms`, `30s`, `5m`,
//!   `1h`, as the environment's durations): per-file session limits.
//! - `-- @CONTRACT`: the migration is deliberately incompatible with the previous release (it
//!   runs in the contract phase, and lint's `breaking_*` rules are silenced for it).
//! - `-- @REPEAT_UNTIL_ZERO`, only in a `-- @NO_TRANSACTION` file, on its own line between two
//!   statements (or before the first one) of the forward or undo section: the next statement is
//!   repeated until it affects no rows (for batched backfills and deletes).
//! - Any other `-- @WORD` line before the first statement is an unknown directive, a problem.
//!   After SQL has started, a line that looks like a misspelt known directive (`-- @undo`,
//!   `--@UNDO`, `-- @UNDO now`) is a problem too; other `-- @...` comments are ordinary comments.
//!
//! Directive lines stay in [`Migration::up`], so statement line numbers match the file. The
//! SQL is split into statements once, here ([`Migration::up_statements`],
//! [`Migration::down_statements`]); their lines are lines of the file, in both sections.

mod body;
mod directive;
mod name;
mod parse;
mod scan;
pub mod split;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use name::{file_name, parse_name, slugify};
pub use parse::{parse, undo_checksum};
pub use scan::{read_file, taken_versions};
use split::Statement;

/// The marker line between the forward and the undo SQL.
pub const UNDO_MARKER: &str = "-- @UNDO";
/// The directive that makes a migration run statement by statement, each autocommitted.
pub const NO_TRANSACTION: &str = "-- @NO_TRANSACTION";
/// The directive giving a per-file `statement_timeout` (followed by a duration).
pub const STATEMENT_TIMEOUT: &str = "-- @STATEMENT_TIMEOUT";
/// The directive giving a per-file `lock_timeout` (followed by a duration).
pub const LOCK_TIMEOUT: &str = "-- @LOCK_TIMEOUT";
/// The directive marking a migration deliberately incompatible with the previous release.
pub const CONTRACT: &str = "-- @CONTRACT";
/// What [`render`] writes when no forward SQL was given. It must be replaced: a file still
/// holding this line does not load.
pub const UP_PLACEHOLDER: &str =
    "-- write the forward SQL here (this file does not load until a statement replaces this line)";
/// What [`render`] writes when an empty undo was asked for.
pub const UNDO_PLACEHOLDER: &str = "-- write the undo SQL here";
/// The largest migration file accepted (the whole set is held in memory).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

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
    /// The forward SQL: the text before `-- @UNDO`, line endings normalised to `\n`. Directive
    /// comment lines are kept, so statement line numbers are those of the file.
    pub up: String,
    /// The undo SQL after `-- @UNDO`; `None` when the file has no marker (irreversible).
    /// `Some("")` when the marker is there but no undo statement follows it: a no-op undo (and
    /// for a file with no statement at all).
    pub down: Option<String>,
    /// The forward statements, split once at load; empty for a down-only migration. Each
    /// statement's `line` is its 1-based line in the file.
    pub up_statements: Vec<Statement>,
    /// The undo statements, `None` exactly when `down` is `None`; lines are lines of the file
    /// (not of the undo section).
    pub down_statements: Option<Vec<Statement>>,
    /// `-- @NO_TRANSACTION` was given.
    pub no_transaction: bool,
    /// `-- @STATEMENT_TIMEOUT <duration>` was given.
    pub statement_timeout: Option<Duration>,
    /// `-- @LOCK_TIMEOUT <duration>` was given.
    pub lock_timeout: Option<Duration>,
    /// `-- @CONTRACT` was given: deliberately incompatible with the previous release.
    pub contract: bool,
    /// SHA-256 hex of the normalised forward and undo SQL (docs/file-format.md, "Checksum").
    pub checksum: String,
    /// [`undo_checksum`] of the undo SQL and its mode, kept in the ledger beside the stored
    /// undo; `None` exactly when `down` is `None`.
    pub undo_checksum: Option<String>,
}

#[cfg(test)]
impl Migration {
    /// A unit tests' migration: `version`, an empty forward section, no undo section, no
    /// directives. Real migrations come only from [`parse`].
    pub(crate) fn fixture(version: i64) -> Migration {
        Migration {
            version,
            slug: String::new(),
            description: String::new(),
            path: PathBuf::new(),
            up: String::new(),
            down: None,
            up_statements: Vec::new(),
            down_statements: None,
            no_transaction: false,
            statement_timeout: None,
            lock_timeout: None,
            contract: false,
            checksum: String::new(),
            undo_checksum: None,
        }
    }
}

/// A problem with one file of the set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

fn problem(path: &Path, line: Option<usize>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The body of a new migration file: the forward SQL, then, when `undo` is given, the
/// `-- @UNDO` marker and the undo SQL. Empty SQL becomes a comment placeholder
/// ([`UP_PLACEHOLDER`], [`UNDO_PLACEHOLDER`]); a file still holding the forward placeholder
/// does not load, so the caller should tell the user to edit it.
pub fn render(up: &str, undo: Option<&str>) -> String {
    let mut body = String::new();
    let up = up.trim();
    body.push_str(if up.is_empty() { UP_PLACEHOLDER } else { up });
    body.push('\n');
    if let Some(undo) = undo {
        let undo = undo.trim();
        body.push('\n');
        body.push_str(UNDO_MARKER);
        body.push('\n');
        body.push_str(if undo.is_empty() {
            UNDO_PLACEHOLDER
        } else {
            undo
        });
        body.push('\n');
    }
    body
}

/// Sorts problems file by file, then by line (stable: a file's problems without a line, then
/// the others in line order), and drops exact repeats.
fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    let mut seen = std::collections::HashSet::with_capacity(problems.len());
    problems.retain(|p| seen.insert(p.clone()));
    problems
}

/// Loads `dir` (plus `dir/<environment>/` when it exists), sorted by version.
///
/// Every problem of every file is collected, sorted by file and line, and returned together.
/// A missing `dir` is one problem; an empty `dir` is an empty set.
pub fn load(dir: &Path, environment: Option<&str>) -> Result<Vec<Migration>, Vec<Problem>> {
    Loading::new(dir, environment)?.finish()
}

/// [`load`] a few files at a time, so a caller can do other work between them (the run
/// connects to the database meanwhile).
pub(crate) struct Loading {
    files: Vec<PathBuf>,
    next: usize,
    migrations: Vec<Migration>,
    problems: Vec<Problem>,
}

impl Loading {
    /// Lists the files (and their problems) of `dir` plus `dir/<environment>/`.
    pub(crate) fn new(dir: &Path, environment: Option<&str>) -> Result<Loading, Vec<Problem>> {
        scan::check_dir(dir).map_err(|p| vec![p])?;
        let mut files = Vec::new();
        let mut problems = Vec::new();
        scan::scan(dir, &mut files, &mut problems);
        if let Some(env) = environment.filter(|e| !e.is_empty()) {
            let env_dir = dir.join(env);
            if env_dir.is_dir() {
                scan::scan(&env_dir, &mut files, &mut problems);
            }
        }
        files.sort();
        Ok(Loading {
            migrations: Vec::with_capacity(files.len()),
            files,
            next: 0,
            problems,
        })
    }

    /// Reads and parses up to `n` more files; `true` once every file is read.
    pub(crate) fn read_some(&mut self, n: usize) -> bool {
        let end = self.files.len().min(self.next.saturating_add(n));
        scan::read(
            &self.files[self.next..end],
            &mut self.migrations,
            &mut self.problems,
        );
        self.next = end;
        end == self.files.len()
    }

    /// Reads what is left; the set sorted by version, or every problem found.
    pub(crate) fn finish(mut self) -> Result<Vec<Migration>, Vec<Problem>> {
        self.read_some(usize::MAX);
        scan::all_duplicates(&self.files, &mut self.problems);
        if !self.problems.is_empty() {
            return Err(sorted(self.problems));
        }
        // Versions are unique here (a duplicate is a problem, returned above), so an unstable
        // sort orders them the same, in place: a stable one borrows a copy's worth of scratch
        // (132 KB for 500 files, the no-op run's peak).
        self.migrations.sort_unstable_by_key(|m| m.version);
        Ok(self.migrations)
    }
}

/// What `verify` checks: with `environment`, [`load`]`(dir, environment)`; without, the
/// common files merged with each environment sub-directory in turn (so CI catches what a
/// pod of any environment would refuse), every file once, sorted by version then path.
///
/// Each file is read and parsed once, and versions are compared through maps, so the cost is
/// linear in the number of files however many environments there are. Problems are sorted
/// by file and line, each once.
pub fn load_all_environments(
    dir: &Path,
    environment: Option<&str>,
) -> Result<Vec<Migration>, Vec<Problem>> {
    if environment.is_some() {
        return load(dir, environment);
    }
    scan::check_dir(dir).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let mut common = Vec::new();
    scan::scan(dir, &mut common, &mut problems);
    common.sort();
    let mut migrations = Vec::new();
    scan::read(&common, &mut migrations, &mut problems);
    let common_versions = scan::by_version(&common);
    for (version, paths) in &common_versions {
        scan::duplicates(*version, &mut paths.clone(), &mut problems);
    }
    for env in scan::subdirectories(dir) {
        let mut files = Vec::new();
        scan::scan(&dir.join(&env), &mut files, &mut problems);
        files.sort();
        scan::read(&files, &mut migrations, &mut problems);
        for (version, env_paths) in scan::by_version(&files) {
            let mut paths = common_versions.get(&version).cloned().unwrap_or_default();
            paths.extend(env_paths);
            scan::duplicates(version, &mut paths, &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(sorted(problems));
    }
    migrations.sort_by(|a, b| (a.version, &a.path).cmp(&(b.version, &b.path)));
    Ok(migrations)
}

#[cfg(test)]
mod tests;

//! Other tools' migration directories converted into crdb-migrate's format (`import`), the
//! layout detection behind the loader's "this is golang-migrate's layout" hint, and (in
//! [`history`]) the reading of other tools' history tables for `baseline --from`. The core
//! load and run paths reach this module only through `probe`: the layout hint and the
//! foreign-history check.
//!
//! # What is read
//! Each tool's layout as that tool documents and parses it (the readers live in `formats`):
//! - `golang-migrate`: `<version>_<name>.up.sql` / `<version>_<name>.down.sql`, version an
//!   unsigned integer, each file sent as is.
//! - `sqlx`: the same `.up.sql` / `.down.sql` pairs, or plain `<version>_<name>.sql` up-only
//!   files; a file starting with `-- no-transaction` runs without a transaction.
//! - `goose`: `<version>_<name>.sql` with `-- +goose Up`, `-- +goose Down`,
//!   `-- +goose StatementBegin` / `StatementEnd` and `-- +goose NO TRANSACTION` (annotations
//!   matched case-insensitively, as goose does). `.go` migrations and `-- +goose ENVSUB ON`
//!   (environment substitution, a template) are refused.
//! - `dbmate`: `<version>_<name>.sql` with `-- migrate:up` and `-- migrate:down` lines, options
//!   after them (`transaction:false`).
//! - `flyway`: `V<version>__<description>.sql` and undo `U<version>__<description>.sql`, found
//!   recursively; versions such as `1.2.3` or `1_1` (read as `1.1`); an optional
//!   `<script>.sql.conf` with `executeInTransaction=false`. Repeatable `R__` files, baseline
//!   `B` files, SQL callbacks (`beforeMigrate.sql`, `afterEachMigrate__x.sql`, ...), Java
//!   migrations and files using `${placeholders}` are refused.
//! - `diesel`: directories `<version>_<name>/` holding `up.sql`, optionally `down.sql` and
//!   `metadata.toml` (`run_in_transaction = false`); the version is the directory name up to
//!   the first `_` with `-` removed (`2024-01-01-120000` → `20240101120000`), as Diesel stores it.
//! - `pop`: `<version>_<name>[.<dialect>][.autocommit].up.sql` / `.down.sql`, found
//!   recursively. With dialect variants, `--dialect postgres|cockroach` picks the variant (a
//!   variant for the dialect wins over the dialect-free file, as in pop); `.autocommit.` (popx)
//!   means no transaction. `.fizz` files and SQL using Go templates (`{{`) are refused.
//!
//! Files a tool itself ignores (names that do not match its pattern, hidden files) are ignored.
//!
//! # What is written
//! One `<version>_<slug>.sql` per migration: `-- @NO_TRANSACTION` first when the source runs
//! without a transaction (either direction), then the forward SQL byte for byte, then, when
//! a down exists, a `-- @UNDO` line and the down SQL byte for byte. Only the tool's own marker
//! lines are left out (`-- +goose Up`, `-- migrate:down`, `-- +goose StatementBegin`, ...). The
//! One more change: a section wrapped in its own bare `BEGIN;` ... `COMMIT;` (each alone on
//! its line, as golang-migrate's PostgreSQL tutorial writes them) gets those two lines turned
//! into comments (`-- BEGIN;`), since every migration runs in one transaction here; the loader
//! refuses transaction control otherwise. Line numbers stay those of the source. The
//! inserted lines use the source's line ending (CRLF when the source file has CRLF), and a
//! newline is added before `-- @UNDO` when the forward SQL does not end with one.
//!
//! Versions are kept when every one is a positive integer that fits INT8, they are distinct,
//! and their numeric order is the tool's order. Otherwise (20-digit versions, Flyway's `1.2.3`,
//! Diesel's `00000000000000` initial setup, pop's string order differing from numeric order)
//! the whole set is renumbered 1..n in the tool's order.
//!
//! # The mapping file
//! [`MAPPING_FILE`] (`crdb-migrate-import.tsv`) is written beside the migrations in every
//! import (the loader reads only `.sql` files, so it is ignored there). Tab-separated UTF-8:
//! ```text
//! # crdb-migrate import mapping, format 1
//! tool<TAB>goose
//! original_version<TAB>version<TAB>from
//! 1<TAB>1<TAB>00001_create_users.sql
//! ```
//! Lines starting with `#` are comments. `tool` names the source tool; each data row holds the
//! version as the tool's history table stores it (golang-migrate, goose, sqlx: the integer
//! without leading zeros; Flyway: the dotted version; dbmate, pop, Diesel: the version string),
//! the version written here, and the source file(s) relative to the source directory, joined
//! by ` + `. [`history::map_versions`] reads it.
//!
//! # Safety
//! Nothing is written when any problem is found, every problem is reported at once, files are
//! created with `create_new` (never overwriting), and every written file is checked with the
//! loader's own parser first. Files written before an I/O failure are removed again.

pub mod history;
pub(crate) mod probe;

mod convert;
mod detect;
mod formats;
mod mapping;
mod version;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

pub use detect::{detect, layout_hint};
pub(crate) use mapping::{Mapping, read_mapping};
pub(crate) use version::{OrderKey, canonical_version, numeric_key, strip_zeros, version_key};
pub use write::import;

/// The name of the mapping file written into the target directory.
pub const MAPPING_FILE: &str = "crdb-migrate-import.tsv";

/// A tool whose migration layout can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// golang-migrate (`migrate` CLI).
    GolangMigrate,
    /// sqlx (`sqlx migrate`).
    Sqlx,
    /// pressly/goose.
    Goose,
    /// amacneil/dbmate.
    Dbmate,
    /// Flyway (SQL migrations).
    Flyway,
    /// Diesel (`diesel migration`).
    Diesel,
    /// gobuffalo/pop (`soda`), including ory/popx's `.autocommit.` files.
    Pop,
}

impl Tool {
    /// Every tool, in the order history tables are probed.
    pub const ALL: [Tool; 7] = [
        Tool::GolangMigrate,
        Tool::Dbmate,
        Tool::Goose,
        Tool::Flyway,
        Tool::Sqlx,
        Tool::Diesel,
        Tool::Pop,
    ];

    /// The CLI name (`golang-migrate`, `sqlx`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Tool::GolangMigrate => "golang-migrate",
            Tool::Sqlx => "sqlx",
            Tool::Goose => "goose",
            Tool::Dbmate => "dbmate",
            Tool::Flyway => "flyway",
            Tool::Diesel => "diesel",
            Tool::Pop => "pop",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Tool {
    type Err = String;

    fn from_str(s: &str) -> Result<Tool, String> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown tool `{s}`; expected one of golang-migrate, sqlx, goose, dbmate, \
                     flyway, diesel, pop"
                )
            })
    }
}

/// One migration written by [`import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The source file(s), relative to the source directory (as in the mapping file): the up
    /// file first, then the down file and any settings file.
    pub from: Vec<PathBuf>,
    /// The file written.
    pub to: PathBuf,
    /// Its version here.
    pub version: i64,
    /// The version as the source tool's history table stores it (see the module docs).
    pub original_version: String,
}

impl fmt::Display for Imported {
    /// `a.up.sql + a.down.sql -> 1_a.sql`: the sources relative to the source directory (so
    /// Diesel's `<ts>_<name>/up.sql` keeps its directory), the written file by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from: Vec<String> = self
            .from
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let to = self
            .to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        write!(f, "{} -> {to}", from.join(" + "))
    }
}

/// Something [`import`] cannot convert faithfully, or could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// The 1-based line, when one line is at fault.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

pub(crate) fn problem(
    path: &Path,
    line: Option<usize>,
    message: impl Into<String>,
) -> ImportProblem {
    ImportProblem {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// One line of source SQL with where it came from (`text` keeps its line terminator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub path: PathBuf,
    pub line: usize,
}

/// The lines of `text` (terminators kept), numbered from 1.
pub(crate) fn lines_of(path: &Path, text: &str) -> Vec<Line> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| Line {
            text: l.to_string(),
            path: path.to_path_buf(),
            line: i + 1,
        })
        .collect()
}

impl Line {
    /// The line without its terminator.
    pub fn content(&self) -> &str {
        self.text.trim_end_matches(['\n', '\r'])
    }
}

/// One migration as read from the source tool's layout.
#[derive(Debug, Clone)]
pub(crate) struct Foreign {
    /// Canonical original version (see [`canonical_version`]).
    pub original: String,
    /// Where the tool puts it in its order.
    pub order: OrderKey,
    /// The name part, before slugifying.
    pub name: String,
    pub up: Vec<Line>,
    pub down: Option<Vec<Line>>,
    pub no_transaction: bool,
    /// The source files (up first).
    pub from: Vec<PathBuf>,
    /// The source uses CRLF line endings.
    pub crlf: bool,
}

#[cfg(test)]
mod tests;

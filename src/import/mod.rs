//! Other tools' migration directories converted into crdb-migrate's format (`import`), the
//! layout detection behind the loader's "this is golang-migrate's layout" hint, and (in
//! [`history`]) the reading of other tools' history tables for `baseline --from`.
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

mod formats;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::source;

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

/// A sort key in the tool's own order: numbers compare numerically part by part, text by bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OrderKey {
    /// Numeric parts, each `(digit count without leading zeros, digits)`.
    Parts(Vec<(usize, String)>),
    /// Byte-wise string order (pop, Diesel, dbmate's file-name order).
    Text(String),
}

/// Digits without leading zeros (`"0"` when all are zeros).
pub(crate) fn strip_zeros(digits: &str) -> String {
    let s = digits.trim_start_matches('0');
    if s.is_empty() { "0".into() } else { s.into() }
}

pub(crate) fn numeric_key(digits: &str) -> OrderKey {
    let s = strip_zeros(digits);
    OrderKey::Parts(vec![(s.len(), s)])
}

/// The canonical form of a version as `tool`'s history table holds it, for matching history
/// rows with files (see the module docs). `None` when it is not a version of that tool.
pub(crate) fn canonical_version(tool: Tool, v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match tool {
        Tool::GolangMigrate | Tool::Goose | Tool::Sqlx => {
            let neg = v.strip_prefix('-');
            let digits = neg.unwrap_or(v);
            if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
                return None;
            }
            let s = strip_zeros(digits);
            Some(if neg.is_some() && s != "0" {
                format!("-{s}")
            } else {
                s
            })
        }
        Tool::Flyway => {
            let parts: Vec<&str> = v.split(['.', '_']).collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return None;
            }
            let mut parts: Vec<String> = parts.into_iter().map(strip_zeros).collect();
            while parts.len() > 1 && parts.last().is_some_and(|p| p == "0") {
                parts.pop();
            }
            Some(parts.join("."))
        }
        Tool::Dbmate | Tool::Pop | Tool::Diesel => Some(v.to_string()),
    }
}

/// The tool's order key for a canonical version (dbmate: the version; its file order is used
/// when importing).
pub(crate) fn version_key(tool: Tool, canonical: &str) -> OrderKey {
    match tool {
        Tool::GolangMigrate | Tool::Goose | Tool::Sqlx | Tool::Flyway => OrderKey::Parts(
            canonical
                .split('.')
                .map(|p| (p.len(), p.to_string()))
                .collect(),
        ),
        Tool::Dbmate | Tool::Pop | Tool::Diesel => OrderKey::Text(canonical.to_string()),
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

/// Converts the migration directory `src`, laid out for `tool`, into crdb-migrate files in
/// `into` (created when missing), plus the [`MAPPING_FILE`]. `dialect` picks pop's variant
/// (`postgres` or `cockroach`) and is refused for the other tools.
///
/// Returns one [`Imported`] per file written, in version order; or every problem found, with
/// nothing written.
pub fn import(
    tool: Tool,
    src: &Path,
    into: &Path,
    dialect: Option<&str>,
) -> Result<Vec<Imported>, Vec<ImportProblem>> {
    match std::fs::metadata(src) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(vec![problem(src, None, "is not a directory")]),
        Err(e) => {
            return Err(vec![problem(
                src,
                None,
                format!("cannot read the source directory: {e}"),
            )]);
        }
    }
    if let (Ok(a), Ok(b)) = (src.canonicalize(), into.canonicalize())
        && a == b
    {
        return Err(vec![problem(
            into,
            None,
            "is the source directory; import into a new directory (`--into NEWDIR`)",
        )]);
    }
    let (mut foreign, mut problems) = formats::read(tool, src, dialect)?;
    foreign.sort_by(|a, b| a.order.cmp(&b.order).then(a.from.cmp(&b.from)));
    // Two migrations for one version.
    let mut seen: BTreeMap<&str, &Foreign> = BTreeMap::new();
    for f in &foreign {
        if let Some(first) = seen.insert(&f.original, f) {
            problems.push(problem(
                &f.from[0],
                None,
                format!(
                    "version {} is also used by {}; {tool} would not run both, remove one",
                    f.original,
                    first.from[0].display()
                ),
            ));
        }
    }
    for f in foreign.iter_mut().filter(|f| !f.no_transaction) {
        unwrap_transaction(&mut f.up);
        if let Some(down) = &mut f.down {
            unwrap_transaction(down);
        }
    }
    let versions = assign_versions(&foreign);

    // Render and check every file before writing anything.
    let mut planned: Vec<(PathBuf, String, &Foreign, i64)> = Vec::new();
    for (f, &version) in foreign.iter().zip(&versions) {
        let slug = source::slugify(&f.name).unwrap_or_else(|| "imported".to_string());
        let to = into.join(source::file_name(version, &slug));
        let (body, origins) = render(f);
        if let Err(found) = source::parse(&to, body.as_bytes()) {
            for p in found {
                // An empty forward section is a valid no-op forward (issue 10, item 1).
                if p.message.starts_with("has no forward SQL statement") {
                    continue;
                }
                let origin = p.line.and_then(|l| origins.get(l - 1).cloned().flatten());
                problems.push(match origin {
                    Some((path, line)) => problem(&path, Some(line), p.message),
                    None => problem(
                        &f.from[0],
                        None,
                        format!("the converted file would not load: {}", p),
                    ),
                });
            }
        }
        if std::fs::symlink_metadata(&to).is_ok() {
            problems.push(problem(
                &to,
                None,
                "already exists; import never overwrites, choose an empty `--into` directory",
            ));
        }
        planned.push((to, body, f, version));
    }
    let mapping_path = into.join(MAPPING_FILE);
    if std::fs::symlink_metadata(&mapping_path).is_ok() {
        problems.push(problem(
            &mapping_path,
            None,
            "already exists; import never overwrites, choose an empty `--into` directory",
        ));
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        problems.dedup();
        return Err(problems);
    }
    if let Err(e) = std::fs::create_dir_all(into) {
        return Err(vec![problem(
            into,
            None,
            format!("cannot create the directory: {e}"),
        )]);
    }
    let mut mapping = format!(
        "# crdb-migrate import mapping, format 1\ntool\t{tool}\noriginal_version\tversion\tfrom\n"
    );
    for (_, _, f, version) in &planned {
        let from: Vec<String> = f
            .from
            .iter()
            .map(|p| {
                p.strip_prefix(src)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        mapping.push_str(&format!(
            "{}\t{}\t{}\n",
            f.original,
            version,
            from.join(" + ")
        ));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    let files = planned
        .iter()
        .map(|(to, body, _, _)| (to.clone(), body.as_str()))
        .chain(std::iter::once((mapping_path, mapping.as_str())));
    for (to, body) in files {
        if let Err(e) = write_new(&to, body) {
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(vec![problem(
                &to,
                None,
                format!("cannot write the file: {e} (nothing was left written)"),
            )]);
        }
        written.push(to);
    }
    Ok(planned
        .into_iter()
        .map(|(to, _, f, version)| Imported {
            from: f
                .from
                .iter()
                .map(|p| p.strip_prefix(src).unwrap_or(p).to_path_buf())
                .collect(),
            to,
            version,
            original_version: f.original.clone(),
        })
        .collect())
}

fn write_new(path: &Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(body.as_bytes())
}

/// The versions to write, parallel to `foreign` (sorted in the tool's order): the originals
/// when they fit (positive INT8, distinct, numeric order = tool order), else 1..n.
fn assign_versions(foreign: &[Foreign]) -> Vec<i64> {
    let parsed: Option<Vec<i64>> = foreign
        .iter()
        .map(|f| {
            (f.original.bytes().all(|b| b.is_ascii_digit()))
                .then(|| f.original.parse::<i64>().ok())
                .flatten()
                .filter(|&v| v > 0)
        })
        .collect();
    if let Some(v) = parsed
        && v.windows(2).all(|w| w[0] < w[1])
    {
        return v;
    }
    (1..=foreign.len() as i64).collect()
}

/// The upper-cased words of a statement.
fn words(statement: &str) -> Vec<String> {
    use crate::split::{TokenKind, tokens};
    tokens(statement)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| statement[t.start..t.end].to_ascii_uppercase())
        .collect()
}

/// Turns a section's own wrapping transaction into comments: when its first statement is a
/// bare `BEGIN` / `START TRANSACTION` and its last a bare `COMMIT` / `END`, each alone on its
/// line, with no other transaction control between, those two lines get a `-- ` prefix (the
/// migration runs in one transaction here anyway; golang-migrate's PostgreSQL tutorial writes
/// its migrations this way). Anything less clean is left for the loader to refuse.
fn unwrap_transaction(section: &mut [Line]) {
    let text: String = section.iter().map(|l| l.text.as_str()).collect();
    let statements = crate::split::split(&text);
    let (Some(first), Some(last)) = (statements.first(), statements.last()) else {
        return;
    };
    if statements.len() < 2 {
        return;
    }
    let w = |s: &crate::split::Statement| words(&s.text);
    let is_begin = |w: &[String]| {
        matches!(
            w.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["BEGIN"] | ["BEGIN", "TRANSACTION" | "WORK"] | ["START", "TRANSACTION"]
        )
    };
    let is_commit = |w: &[String]| {
        matches!(
            w.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["COMMIT" | "END"] | ["COMMIT" | "END", "TRANSACTION" | "WORK"]
        )
    };
    if !is_begin(&w(first)) || !is_commit(&w(last)) {
        return;
    }
    let control = |s: &crate::split::Statement| {
        let w = w(s);
        matches!(
            w.first().map(String::as_str),
            Some("BEGIN" | "COMMIT" | "END" | "ABORT" | "START" | "PREPARE")
        ) || (w.first().is_some_and(|x| x == "ROLLBACK") && w.get(1).is_none_or(|x| x != "TO"))
    };
    if statements[1..statements.len() - 1].iter().any(control) {
        return;
    }
    let alone = |s: &crate::split::Statement| {
        section.get(s.line - 1).is_some_and(|l| {
            let c = l.content().trim();
            c.trim_end_matches(';').trim_end() == s.text && c.matches(';').count() <= 1
        })
    };
    if !alone(first) || !alone(last) {
        return;
    }
    for line in [first.line, last.line] {
        if let Some(l) = section.get_mut(line - 1) {
            l.text.insert_str(0, "-- ");
        }
    }
}

/// The file body and, per line of it, the source line it came from.
pub(crate) fn render(f: &Foreign) -> (String, Vec<Option<(PathBuf, usize)>>) {
    let nl = if f.crlf { "\r\n" } else { "\n" };
    let mut body = String::new();
    let mut origins = Vec::new();
    if f.no_transaction {
        body.push_str(source::NO_TRANSACTION);
        body.push_str(nl);
        origins.push(None);
    }
    for l in &f.up {
        body.push_str(&l.text);
        origins.push(Some((l.path.clone(), l.line)));
    }
    if let Some(down) = &f.down {
        if !body.is_empty() && !body.ends_with('\n') {
            body.push_str(nl);
        }
        body.push_str(source::UNDO_MARKER);
        body.push_str(nl);
        origins.push(None);
        for l in down {
            body.push_str(&l.text);
            origins.push(Some((l.path.clone(), l.line)));
        }
    }
    (body, origins)
}

/// Recognises a foreign layout in `dir` from its file names and contents: goose annotations
/// or dbmate's `-- migrate:up` in any `.sql` file (such a file would otherwise load as one
/// forward script running its down SQL too), else the layout most of the files follow:
/// Diesel (sub-directories holding `up.sql`), Flyway (`V1__x.sql`), pop (dialect variants,
/// `.fizz`, `.autocommit.`) or golang-migrate (`*.up.sql` / `*.down.sql`; sqlx's reversible
/// layout is the same and imports identically). `None` for crdb-migrate's own layout.
pub fn detect(dir: &Path) -> Option<Tool> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut sql_files = 0usize;
    let mut ours = 0usize;
    let mut counts: BTreeMap<Tool, usize> = BTreeMap::new();
    let mut content_tool: Option<Tool> = None;
    let mut sniffed = 0usize;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            if path.join("up.sql").is_file() {
                *counts.entry(Tool::Diesel).or_default() += 1;
                sql_files += 1;
            }
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".fizz") {
            *counts.entry(Tool::Pop).or_default() += 1;
            sql_files += 1;
            continue;
        }
        if lower.ends_with(".go") && name.starts_with(|c: char| c.is_ascii_digit()) {
            *counts.entry(Tool::Goose).or_default() += 1;
            sql_files += 1;
            continue;
        }
        if !lower.ends_with(".sql") {
            continue;
        }
        sql_files += 1;
        if let Some(t) = formats::name_tool(&name) {
            *counts.entry(t).or_default() += 1;
            continue;
        }
        if source::parse_name(&name).is_ok() {
            ours += 1;
        }
        // Goose and dbmate put their markers in every file: a few files tell.
        if content_tool.is_none() && sniffed < 8 {
            sniffed += 1;
            content_tool = sniff(&path);
        }
    }
    if content_tool.is_some() {
        return content_tool;
    }
    let (tool, n) = counts.into_iter().max_by_key(|&(_, n)| n)?;
    (n > 0 && n * 2 >= sql_files && n > ours).then_some(tool)
}

/// Goose or dbmate markers in the first 64 KiB of a `.sql` file. Only regular files are read
/// (a FIFO or a link to a device must not hang or flood the loader; it reports those itself).
fn sniff(path: &Path) -> Option<Tool> {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    for line in text.lines() {
        if formats::goose_annotation(line).is_some_and(|a| a == "up") {
            return Some(Tool::Goose);
        }
        if formats::dbmate_marker(line).is_some_and(|(dir, _)| dir == "up") {
            return Some(Tool::Dbmate);
        }
    }
    None
}

/// The one sentence the loader shows for a foreign layout:
/// "DIR is in golang-migrate's layout, not crdb-migrate's; convert it with
/// `crdb-migrate import --from golang-migrate DIR --into NEWDIR`".
pub fn layout_hint(dir: &Path) -> Option<String> {
    let tool = detect(dir)?;
    let d = dir.display();
    // sqlx and pop (without dialect variants) write golang-migrate's layout: which tool it was
    // matters for `baseline --from`, which reads the mapping the import wrote for one tool.
    let shared = if tool == Tool::GolangMigrate {
        " (sqlx and pop share it: import with `--from sqlx` or `--from pop` instead when that \
         tool manages the database, so `baseline --from` can read its history)"
    } else {
        ""
    };
    Some(format!(
        "{d} is in {tool}'s layout, not crdb-migrate's; convert it with \
         `crdb-migrate import --from {tool} {d} --into NEWDIR`{shared}"
    ))
}

/// What a mapping file says.
pub(crate) struct Mapping {
    /// The tool imported from.
    pub tool: Tool,
    /// (canonical original version, our version), in file order.
    pub rows: Vec<(String, i64)>,
}

/// Reads `dir`'s mapping file; `None` when there is none.
pub(crate) fn read_mapping(dir: &Path) -> Result<Option<Mapping>, String> {
    let path = dir.join(MAPPING_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let mut tool = None;
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = |what: &str| format!("{}:{}: {what}", path.display(), i + 1);
        match fields.as_slice() {
            ["tool", name] => tool = Some(name.parse::<Tool>().map_err(|e| bad(&e))?),
            ["original_version", "version", "from"] => {}
            [original, version, _from] => {
                let t = tool.ok_or_else(|| bad("a row before the `tool` line"))?;
                let original = canonical_version(t, original)
                    .ok_or_else(|| bad(&format!("`{original}` is not a {t} version")))?;
                let version: i64 = version
                    .parse()
                    .map_err(|_| bad(&format!("`{version}` is not a version")))?;
                if !seen.insert(original.clone()) {
                    return Err(bad(&format!("version {original} is listed twice")));
                }
                rows.push((original, version));
            }
            _ => return Err(bad("expected `original_version<TAB>version<TAB>from`")),
        }
    }
    let tool = tool.ok_or_else(|| format!("{}: no `tool` line", path.display()))?;
    Ok(Some(Mapping { tool, rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_round_trip() {
        for t in Tool::ALL {
            assert_eq!(t.to_string().parse::<Tool>(), Ok(t));
        }
        assert!("liquibase".parse::<Tool>().is_err());
    }

    #[test]
    fn canonical_versions() {
        assert_eq!(canonical_version(Tool::Goose, "0001").as_deref(), Some("1"));
        assert_eq!(
            canonical_version(Tool::Flyway, "1_01").as_deref(),
            Some("1.1")
        );
        assert_eq!(
            canonical_version(Tool::Flyway, "1.1.0").as_deref(),
            Some("1.1")
        );
        assert_eq!(canonical_version(Tool::Flyway, "1..2"), None);
        assert_eq!(
            canonical_version(Tool::Pop, "0001").as_deref(),
            Some("0001")
        );
        assert_eq!(canonical_version(Tool::Sqlx, "x"), None);
        assert!(version_key(Tool::Flyway, "1.10") > version_key(Tool::Flyway, "1.9"));
        assert!(version_key(Tool::Pop, "10") < version_key(Tool::Pop, "9"));
    }

    fn foreign(original: &str, order: OrderKey) -> Foreign {
        Foreign {
            original: original.into(),
            order,
            name: "x".into(),
            up: vec![],
            down: None,
            no_transaction: false,
            from: vec![PathBuf::from("x")],
            crlf: false,
        }
    }

    #[test]
    fn versions_kept_or_renumbered() {
        let keep = [
            foreign("1", numeric_key("1")),
            foreign("20240101120000", numeric_key("20240101120000")),
        ];
        assert_eq!(assign_versions(&keep), [1, 20240101120000]);
        let big = [
            foreign("1", numeric_key("1")),
            foreign("12345678901234567890", numeric_key("12345678901234567890")),
        ];
        assert_eq!(assign_versions(&big), [1, 2]);
        // pop's string order puts 10 before 9: keeping them would change the order.
        let pop = [
            foreign("10", version_key(Tool::Pop, "10")),
            foreign("9", version_key(Tool::Pop, "9")),
        ];
        assert_eq!(assign_versions(&pop), [1, 2]);
        let zero = [
            foreign("0", numeric_key("0")),
            foreign("5", numeric_key("5")),
        ];
        assert_eq!(assign_versions(&zero), [1, 2]);
    }

    #[test]
    fn render_adds_markers_in_the_sources_line_ending() {
        let p = Path::new("a.sql");
        let mut f = foreign("1", numeric_key("1"));
        f.up = lines_of(p, "SELECT 1;\r\nSELECT 2");
        f.down = Some(lines_of(p, "SELECT 3;\r\n"));
        f.no_transaction = true;
        f.crlf = true;
        let (body, origins) = render(&f);
        assert_eq!(
            body,
            "-- @NO_TRANSACTION\r\nSELECT 1;\r\nSELECT 2\r\n-- @UNDO\r\nSELECT 3;\r\n"
        );
        assert_eq!(origins.len(), 5);
        assert_eq!(origins[2], Some((p.to_path_buf(), 2)));
        assert_eq!(origins[3], None);
    }

    #[test]
    fn problems_display_with_and_without_line() {
        assert_eq!(
            problem(Path::new("a.sql"), Some(3), "bad").to_string(),
            "a.sql:3: bad"
        );
        assert_eq!(
            problem(Path::new("a.sql"), None, "bad").to_string(),
            "a.sql: bad"
        );
    }

    fn write(dir: &Path, rel: &str, body: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, body).expect("write");
    }

    #[test]
    fn a_byte_order_mark_does_not_end_up_after_the_directive() {
        let src = tempfile::tempdir().expect("tempdir");
        write(
            src.path(),
            "V1__idx.sql",
            "\u{feff}CREATE INDEX CONCURRENTLY i ON t (a);\n",
        );
        write(
            src.path(),
            "V1__idx.sql.conf",
            "executeInTransaction=false\n",
        );
        let out = tempfile::tempdir().expect("tempdir");
        let done = import(Tool::Flyway, src.path(), &out.path().join("o"), None).expect("import");
        let body = std::fs::read_to_string(&done[0].to).expect("read");
        assert_eq!(
            body,
            "-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
        );
    }

    #[test]
    fn a_down_only_goose_file_imports_with_an_empty_forward() {
        let src = tempfile::tempdir().expect("tempdir");
        write(
            src.path(),
            "00001_x.sql",
            "-- +goose Up\n-- +goose Down\nDROP TABLE old;\n",
        );
        let out = tempfile::tempdir().expect("tempdir");
        let done = import(Tool::Goose, src.path(), &out.path().join("o"), None).expect("import");
        let body = std::fs::read_to_string(&done[0].to).expect("read");
        assert_eq!(body, "-- @UNDO\nDROP TABLE old;\n");
    }

    #[test]
    fn a_wrapping_transaction_becomes_comments() {
        let p = Path::new("a.sql");
        let mut l = lines_of(p, "-- x\nBEGIN;\nCREATE TABLE a (x INT);\n  commit ;\n");
        unwrap_transaction(&mut l);
        let text: String = l.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            text,
            "-- x\n-- BEGIN;\nCREATE TABLE a (x INT);\n--   commit ;\n"
        );
        for kept in [
            "BEGIN; CREATE TABLE a (x INT);\nCOMMIT;\n",
            "BEGIN;\nCREATE TABLE a (x INT);\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON a (x);\n",
            "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n",
            "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;\n",
        ] {
            let mut l = lines_of(p, kept);
            unwrap_transaction(&mut l);
            let text: String = l.iter().map(|l| l.text.as_str()).collect();
            assert_eq!(text, kept);
        }
    }

    #[test]
    fn converted_files_that_would_not_load_point_at_the_source_line() {
        let src = tempfile::tempdir().expect("tempdir");
        write(
            src.path(),
            "1_a.up.sql",
            "CREATE TABLE a (x INT);\nCOMMIT;\nBEGIN;\nSELECT 1;\n",
        );
        let out = tempfile::tempdir().expect("tempdir");
        let p = import(Tool::GolangMigrate, src.path(), &out.path().join("o"), None)
            .expect_err("transaction control");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].path.ends_with("1_a.up.sql"));
        assert_eq!((p[0].line, p[1].line), (Some(2), Some(3)));
        assert!(p[1].message.contains("`BEGIN`"), "{p:?}");
        assert!(!out.path().join("o").exists());
    }

    #[test]
    fn layout_and_loader_problems_are_reported_together() {
        let src = tempfile::tempdir().expect("tempdir");
        write(
            src.path(),
            "00001_a.sql",
            "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n",
        );
        write(
            src.path(),
            "00002_b.sql",
            "-- +goose Up\nSELECT 1;\nROLLBACK;\n",
        );
        write(src.path(), "00003_c.sql", "-- +goose Up\nSELECT 3;\n");
        let out = tempfile::tempdir().expect("tempdir");
        let p = import(Tool::Goose, src.path(), &out.path().join("o"), None).expect_err("two");
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(p.len(), 2, "{shown:#?}");
        assert!(shown[0].contains("00001_a.sql:2: "), "{shown:#?}");
        assert!(shown[1].contains("00002_b.sql:3: `ROLLBACK`"), "{shown:#?}");
    }

    #[test]
    fn detect_sniffs_goose_and_dbmate_contents() {
        let goose = tempfile::tempdir().expect("tempdir");
        write(goose.path(), "1_a.sql", "SELECT 1;\n");
        write(
            goose.path(),
            "20240101_Create-Users.sql",
            "-- +goose Up\nSELECT 1;\n",
        );
        assert_eq!(detect(goose.path()), Some(Tool::Goose));
        let dbmate = tempfile::tempdir().expect("tempdir");
        write(
            dbmate.path(),
            "20240101_a.sql",
            "-- migrate:up\nSELECT 1;\n",
        );
        assert_eq!(detect(dbmate.path()), Some(Tool::Dbmate));
        let ours = tempfile::tempdir().expect("tempdir");
        write(ours.path(), "1_a.sql", "SELECT 1;\n-- @UNDO\nSELECT 2;\n");
        write(ours.path(), "2_b.up.sql", "SELECT 1;\n"); // one stray file is not a layout
        assert_eq!(detect(ours.path()), None);
        let diesel = tempfile::tempdir().expect("tempdir");
        write(diesel.path(), "2024-01-01-000000_a/up.sql", "SELECT 1;\n");
        assert_eq!(detect(diesel.path()), Some(Tool::Diesel));
        assert!(layout_hint(diesel.path()).is_some_and(|h| h.contains("--from diesel")));
    }
}

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
//!
//! Directives are comment lines holding exactly `-- @WORD`:
//! - `-- @NO_TRANSACTION` must come before the first SQL statement of the file (blank lines and
//!   ordinary comments may precede or follow it): each statement then runs on its own.
//! - `-- @REPEAT_UNTIL_ZERO`, only in a `-- @NO_TRANSACTION` file, on its own line between two
//!   statements (or before the first one) of the forward or undo section: the next statement is
//!   repeated until it affects no rows (for batched backfills and deletes).
//! - Any other `-- @WORD` line before the first statement is an unknown directive, a problem.
//!   After SQL has started, a line that looks like a misspelt known directive (`-- @undo`,
//!   `--@UNDO`, `-- @UNDO now`) is a problem too; other `-- @...` comments are ordinary comments.
//!
//! Directive lines stay in [`Migration::up`], so statement line numbers match the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::split::{REPEAT_UNTIL_ZERO, Statement, split};

/// The marker line between the forward and the undo SQL.
pub const UNDO_MARKER: &str = "-- @UNDO";
/// The directive that makes a migration run statement by statement, each autocommitted.
pub const NO_TRANSACTION: &str = "-- @NO_TRANSACTION";
/// What [`render`] writes when no forward SQL was given. It must be replaced: a file without a
/// forward statement does not load.
pub const UP_PLACEHOLDER: &str =
    "-- write the forward SQL here (this file does not load until a statement replaces this line)";
/// What [`render`] writes when an empty undo was asked for.
pub const UNDO_PLACEHOLDER: &str = "-- write the undo SQL here";

const EXPECTED_NAME: &str = "expected `<version>_<description>.sql`, e.g. `20240101120000_add_users.sql`: \
     the version is digits (a positive number that fits a signed 64-bit integer), \
     the description lowercase letters, digits and `_`";

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
    /// `Some("")` when the marker is there but no undo statement follows it: a no-op undo.
    pub down: Option<String>,
    /// `-- @NO_TRANSACTION` was given.
    pub no_transaction: bool,
    /// SHA-256 hex of the normalised forward and undo SQL (see the crate docs on checksums).
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

fn problem(path: &Path, line: Option<usize>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Parses a migration file name into its version and slug; the error says what is wrong.
pub fn parse_name(file_name: &str) -> Result<(i64, String), String> {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return Err(format!("bad file name: {EXPECTED_NAME}"));
    };
    let Some((digits, slug)) = stem.split_once('_') else {
        return Err(format!(
            "bad file name: no `_` between version and description; {EXPECTED_NAME}"
        ));
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "bad file name: the version `{digits}` is not all digits; {EXPECTED_NAME}"
        ));
    }
    let version: i64 = digits.parse().map_err(|_| {
        format!(
            "bad file name: the version `{digits}` does not fit a signed 64-bit integer \
             (at most {}); {EXPECTED_NAME}",
            i64::MAX
        )
    })?;
    if version == 0 {
        return Err(format!(
            "bad file name: the version must be positive, not 0; {EXPECTED_NAME}"
        ));
    }
    if slug.is_empty()
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "bad file name: the description `{slug}` must be lowercase letters, digits and `_`; \
             {EXPECTED_NAME}"
        ));
    }
    Ok((version, slug.to_string()))
}

/// Turns a human description into a file-name slug: lowercase, every run of characters other
/// than `[a-z0-9]` becomes one `_`, no `_` at either end. `None` when nothing is left.
pub fn slugify(description: &str) -> Option<String> {
    let mut slug = String::new();
    let mut gap = false;
    for c in description.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if gap && !slug.is_empty() {
                slug.push('_');
            }
            gap = false;
            slug.push(c);
        } else {
            gap = true;
        }
    }
    (!slug.is_empty()).then_some(slug)
}

/// The file name of a migration: `{version}_{slug}.sql`.
pub fn file_name(version: i64, slug: &str) -> String {
    format!("{version}_{slug}.sql")
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

/// `\r\n` and lone `\r` become `\n`.
fn normalise_line_endings(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Line endings to `\n`, trailing whitespace off every line and off the end.
fn normalise(s: &str) -> String {
    let s = normalise_line_endings(s);
    let lines: Vec<&str> = s.split('\n').map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

/// SHA-256 (hex) of the normalised forward SQL, then, when `down` is given, `\n-- @UNDO\n` and
/// the normalised undo SQL. Normalised: `\r\n` and lone `\r` read as `\n`, trailing whitespace
/// trimmed from every line and from the end. A CRLF copy of a file has the same checksum.
pub fn checksum(up: &str, down: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalise(up).as_bytes());
    if let Some(down) = down {
        hasher.update(b"\n-- @UNDO\n");
        hasher.update(normalise(down).as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The word of a directive-looking line (`-- @WORD`, `--@word ...`), if it is one.
fn directive_word(line: &str) -> Option<&str> {
    let rest = line
        .trim()
        .strip_prefix("--")?
        .trim_start()
        .strip_prefix('@')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

const KNOWN: [&str; 3] = ["NO_TRANSACTION", "REPEAT_UNTIL_ZERO", "UNDO"];

/// Parses one migration file from its path and bytes; every problem of the file is returned.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Migration, Vec<Problem>> {
    let mut problems = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = parse_name(&name).map_err(|e| problems.push(problem(path, None, e)));
    let body = match std::str::from_utf8(bytes) {
        Ok(body) => body,
        Err(e) => {
            problems.push(problem(
                path,
                None,
                format!(
                    "is not valid UTF-8 (first bad byte at offset {}); save it as UTF-8",
                    e.valid_up_to()
                ),
            ));
            return Err(problems);
        }
    };
    let body = normalise_line_endings(body.strip_prefix('\u{feff}').unwrap_or(body));
    let lines: Vec<&str> = body.split('\n').collect();

    // The marker(s).
    let markers: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim() == UNDO_MARKER)
        .collect();
    for &extra in markers.iter().skip(1) {
        problems.push(problem(
            path,
            Some(extra + 1),
            format!(
                "a second `{UNDO_MARKER}` marker (the first is on line {}); a file has one \
                 forward and one undo section, remove one marker",
                markers[0] + 1
            ),
        ));
    }
    let marker = markers.first().copied();
    let (up, down) = match marker {
        Some(m) => (lines[..m].join("\n"), Some(lines[m + 1..].join("\n"))),
        None => (body.clone(), None),
    };
    let up_statements = split(&up);
    let down_offset = marker.map_or(0, |m| m + 1);
    let down_statements = down.as_deref().map(split).unwrap_or_default();
    let first_sql_line = up_statements.first().map_or(usize::MAX, |s| s.line);

    // Directives.
    let mut no_transaction = false;
    let mut repeats: Vec<(usize, bool)> = Vec::new(); // (file line, in undo section)
    for (i, line) in lines.iter().enumerate() {
        let lineno = i + 1;
        let Some(word) = directive_word(line) else {
            continue;
        };
        let exact = line.trim() == format!("-- @{word}");
        let in_undo = marker.is_some_and(|m| i > m);
        let before_sql = !in_undo && lineno < first_sql_line;
        if markers.contains(&i) {
            continue;
        }
        match (word, exact) {
            ("NO_TRANSACTION", true) if before_sql => no_transaction = true,
            ("NO_TRANSACTION", true) => problems.push(problem(
                path,
                Some(lineno),
                format!(
                    "`{NO_TRANSACTION}` after SQL has started; directives must come before any \
                     SQL, move it to the top of the file"
                ),
            )),
            ("REPEAT_UNTIL_ZERO", true) => repeats.push((lineno, in_undo)),
            _ if KNOWN.iter().any(|k| k.eq_ignore_ascii_case(word)) => problems.push(problem(
                path,
                Some(lineno),
                format!(
                    "`{}` looks like a misspelt directive; write it as a line holding \
                         exactly `-- @{}`",
                    line.trim(),
                    word.to_ascii_uppercase()
                ),
            )),
            _ if before_sql => problems.push(problem(
                path,
                Some(lineno),
                format!(
                    "unknown directive `{}`; the directives are `{NO_TRANSACTION}` and \
                     `{REPEAT_UNTIL_ZERO}` (and the `{UNDO_MARKER}` marker)",
                    line.trim()
                ),
            )),
            _ => {}
        }
    }
    for (lineno, in_undo) in repeats {
        if !no_transaction {
            problems.push(problem(
                path,
                Some(lineno),
                format!(
                    "`{REPEAT_UNTIL_ZERO}` is only allowed in a `{NO_TRANSACTION}` file (each \
                     repetition commits on its own); add `{NO_TRANSACTION}` at the top or remove it"
                ),
            ));
            continue;
        }
        let (statements, offset): (&[Statement], usize) = if in_undo {
            (&down_statements, down_offset)
        } else {
            (&up_statements, 0)
        };
        let next = statements.iter().find(|s| s.line + offset > lineno);
        if !next.is_some_and(|s| s.repeat_until_zero) {
            problems.push(problem(
                path,
                Some(lineno),
                format!(
                    "`{REPEAT_UNTIL_ZERO}` must stand on its own line between statements, \
                     directly before the statement to repeat (is a `;` missing before it, or \
                     does no statement follow?)"
                ),
            ));
        }
    }
    if up_statements.is_empty() {
        problems.push(problem(
            path,
            None,
            format!(
                "has no forward SQL statement; write the forward SQL{}",
                if marker.is_some() {
                    format!(" before `{UNDO_MARKER}`")
                } else {
                    String::new()
                }
            ),
        ));
    }
    for (statements, offset, section) in [
        (&up_statements, 0, "forward"),
        (&down_statements, down_offset, "undo"),
    ] {
        for st in statements.iter() {
            if let Some(what) = transaction_control(&st.text) {
                problems.push(problem(
                    path,
                    Some(st.line + offset),
                    format!(
                        "`{what}` in the {section} SQL: crdb-migrate runs each migration in one \
                         transaction with its ledger row (or, with `{NO_TRANSACTION}`, each \
                         statement on its own), so transaction control in the file would break \
                         that; remove it, or split the file"
                    ),
                ));
            }
        }
    }
    if let Some(m) = marker
        && let Some(i) = lines
            .iter()
            .skip(m + 1)
            .position(|l| l.trim() == UNDO_PLACEHOLDER)
    {
        problems.push(problem(
            path,
            Some(m + 2 + i),
            format!(
                "the undo section still holds the placeholder; write the undo SQL, or remove the \
                 `{UNDO_MARKER}` line to make the migration irreversible"
            ),
        ));
    }
    let Ok((version, slug)) = named else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let down = down.map(|d| {
        if down_statements.is_empty() {
            String::new()
        } else {
            d
        }
    });
    Ok(Migration {
        version,
        description: slug.replace('_', " "),
        slug,
        path: path.to_path_buf(),
        checksum: checksum(&up, down.as_deref()),
        up,
        down,
        no_transaction,
    })
}

/// The transaction-control statement `text` is, if it is one (`BEGIN`, `START TRANSACTION`,
/// `COMMIT`, `END`, `ABORT`, `ROLLBACK` but not `ROLLBACK TO SAVEPOINT`, `PREPARE
/// TRANSACTION`). Savepoints stay allowed: they live inside the transaction.
fn transaction_control(text: &str) -> Option<String> {
    let words: Vec<String> = crate::split::tokens(text)
        .into_iter()
        .filter(|t| t.kind == crate::split::TokenKind::Word)
        .take(2)
        .map(|t| text[t.start..t.end].to_ascii_uppercase())
        .collect();
    let first = words.first()?.as_str();
    let second = words.get(1).map(String::as_str);
    let hit = match first {
        "BEGIN" | "COMMIT" | "END" | "ABORT" => true,
        "START" | "PREPARE" => second == Some("TRANSACTION"),
        "ROLLBACK" => second != Some("TO"),
        _ => false,
    };
    hit.then(|| words.join(" "))
}

/// The `.sql` files of `dir` (not recursive); problems for entries that cannot be looked at.
fn scan(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                format!("cannot read the directory: {e}"),
            ));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if lossy.starts_with('.') || !lossy.to_ascii_lowercase().ends_with(".sql") {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            // A FIFO would block the read forever and a device never end: regular files only.
            Ok(meta) if !meta.is_file() => {
                problems.push(problem(
                    &path,
                    None,
                    "is not a regular file (a FIFO, socket or device?); migrations must be files",
                ));
                continue;
            }
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                problems.push(problem(
                    &path,
                    None,
                    format!(
                        "is {} bytes, more than the {} MiB a migration file may have; split it",
                        meta.len(),
                        MAX_FILE_BYTES >> 20
                    ),
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                problems.push(problem(&path, None, format!("cannot read the file: {e}")));
                continue;
            }
        }
        if name.to_str().is_none() {
            problems.push(problem(
                &path,
                None,
                format!("the file name is not valid UTF-8; {EXPECTED_NAME}"),
            ));
            continue;
        }
        files.push(path);
    }
}

/// The largest migration file accepted (the whole set is held in memory).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Loads `dir` (plus `dir/<environment>/` when it exists), sorted by version.
///
/// Every problem of every file is collected, sorted by file and line, and returned together.
/// A missing `dir` is one problem; an empty `dir` is an empty set.
pub fn load(dir: &Path, environment: Option<&str>) -> Result<Vec<Migration>, Vec<Problem>> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(vec![problem(
                dir,
                None,
                "is not a directory; set MIGRATIONS_DIR to the directory holding the .sql files",
            )]);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(vec![problem(
                dir,
                None,
                "the migrations directory does not exist; set MIGRATIONS_DIR to the directory \
                 holding the .sql files",
            )]);
        }
        Err(e) => {
            return Err(vec![problem(
                dir,
                None,
                format!("cannot read the migrations directory: {e}"),
            )]);
        }
    }
    let mut files = Vec::new();
    let mut problems = Vec::new();
    scan(dir, &mut files, &mut problems);
    if let Some(env) = environment.filter(|e| !e.is_empty()) {
        let env_dir = dir.join(env);
        if env_dir.is_dir() {
            scan(&env_dir, &mut files, &mut problems);
        }
    }
    files.sort();

    let mut migrations = Vec::new();
    let mut by_version: BTreeMap<i64, Vec<&Path>> = BTreeMap::new();
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Ok((version, _)) = parse_name(&name) {
            by_version.entry(version).or_default().push(path);
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(problem(path, None, format!("cannot read the file: {e}")));
                continue;
            }
        };
        match parse(path, &bytes) {
            Ok(m) => migrations.push(m),
            Err(p) => problems.extend(p),
        }
    }
    for (version, paths) in &by_version {
        let Some((first, rest)) = paths.split_first() else {
            continue;
        };
        for other in rest {
            problems.push(problem(
                other,
                None,
                format!(
                    "version {version} is used twice: by {} and by {}; versions must be \
                     unique (across the common and the environment directory), renumber one",
                    first.display(),
                    other.display()
                ),
            ));
        }
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        return Err(problems);
    }
    migrations.sort_by_key(|m| m.version);
    Ok(migrations)
}

#[cfg(test)]
mod tests {
    #[test]
    fn transaction_control_is_refused_but_savepoints_are_fine() {
        for (body, bad) in [
            (
                "CREATE TABLE a (id INT);\nCOMMIT;\nCREATE TABLE b (id INT);",
                Some(2),
            ),
            ("BEGIN;\nCREATE TABLE a (id INT);", Some(1)),
            ("START TRANSACTION;\nSELECT 1;", Some(1)),
            ("SELECT 1;\n-- @UNDO\nROLLBACK;", Some(3)),
            (
                "SAVEPOINT s;\nSELECT 1;\nROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;",
                None,
            ),
            ("DO $$ BEGIN PERFORM 1; END $$;\nSELECT 'COMMIT';", None),
        ] {
            let got = parse(Path::new("1_x.sql"), body.as_bytes());
            match bad {
                None => assert!(got.is_ok(), "{body}: {got:?}"),
                Some(line) => {
                    let problems = got.err().unwrap_or_default();
                    assert_eq!(problems.len(), 1, "{body}: {problems:?}");
                    assert_eq!(problems[0].line, Some(line), "{body}");
                    assert!(problems[0].message.contains("transaction"), "{body}");
                }
            }
        }
    }

    #[test]
    fn the_undo_placeholder_does_not_load() {
        let body = render("CREATE TABLE t (id INT);", Some(""));
        let problems = parse(Path::new("1_x.sql"), body.as_bytes())
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("placeholder"));
        assert!(
            parse(
                Path::new("1_x.sql"),
                render("SELECT 1;", Some("SELECT 2;")).as_bytes()
            )
            .is_ok()
        );
    }

    use super::*;
    use proptest::prelude::*;
    use std::fs;

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create dir");
        }
        fs::write(&path, body).expect("write file");
        path
    }

    fn one(name: &str, body: &str) -> Result<Migration, Vec<Problem>> {
        parse(Path::new(name), body.as_bytes())
    }

    fn problems(name: &str, body: &str) -> Vec<Problem> {
        match one(name, body) {
            Ok(m) => panic!("expected problems, got {m:?}"),
            Err(p) => p,
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("001_x.sql"), Ok((1, "x".to_string())));
        assert_eq!(
            parse_name("20240101120000_add_users_2.sql"),
            Ok((20240101120000, "add_users_2".to_string()))
        );
        assert_eq!(
            parse_name("9223372036854775807_max.sql"),
            Ok((i64::MAX, "max".to_string()))
        );
        for bad in [
            "x.sql",
            "1.sql",
            "_x.sql",
            "1_.sql",
            "0_x.sql",
            "000_x.sql",
            "9223372036854775808_x.sql",
            "1_Add.sql",
            "1_a-b.sql",
            "1_a b.sql",
            "+1_x.sql",
            "1_x.SQL",
            "1_x.sql.bak",
        ] {
            let e = parse_name(bad).expect_err(bad);
            assert!(e.contains("<version>_<description>.sql"), "{bad}: {e}");
        }
        assert!(parse_name("0_x.sql").unwrap_err().contains("positive"));
        assert!(
            parse_name("9223372036854775808_x.sql")
                .unwrap_err()
                .contains("64-bit")
        );
        assert!(parse_name("1_Add.sql").unwrap_err().contains("lowercase"));
    }

    #[test]
    fn slugs_and_file_names() {
        assert_eq!(
            slugify("Add users table!").as_deref(),
            Some("add_users_table")
        );
        assert_eq!(slugify("  --a  b--  ").as_deref(), Some("a_b"));
        assert_eq!(slugify("Ünïcode 2"), Some("n_code_2".to_string()));
        assert_eq!(slugify("!!!"), None);
        assert_eq!(slugify(""), None);
        assert_eq!(
            file_name(20240101120000, "add_users"),
            "20240101120000_add_users.sql"
        );
        let slug = slugify("Créer la table").expect("slug");
        assert!(parse_name(&file_name(1, &slug)).is_ok());
    }

    #[test]
    fn render_round_trips() {
        let body = render("CREATE TABLE t (a INT);", Some("DROP TABLE t;"));
        assert_eq!(body, "CREATE TABLE t (a INT);\n\n-- @UNDO\nDROP TABLE t;\n");
        let m = one("1_t.sql", &body).expect("loads");
        assert_eq!(split(&m.up).len(), 1);
        assert_eq!(m.down.as_deref().map(split).map(|s| s.len()), Some(1));

        let body = render("SELECT 1", None);
        assert_eq!(one("1_t.sql", &body).expect("loads").down, None);

        // The placeholder template must be edited before it loads.
        let body = render("", Some(""));
        assert!(body.contains(UP_PLACEHOLDER) && body.contains(UNDO_PLACEHOLDER));
        let p = problems("1_t.sql", &body);
        assert!(p[0].message.contains("no forward SQL statement"), "{p:?}");
    }

    #[test]
    fn body_parts() {
        let m = one(
            "0042_add_users.sql",
            "-- create the table\nCREATE TABLE users (id INT PRIMARY KEY);\n\n  -- @UNDO \r\nDROP TABLE users;\n",
        )
        .expect("loads");
        assert_eq!(m.version, 42);
        assert_eq!(m.slug, "add_users");
        assert_eq!(m.description, "add users");
        assert!(!m.no_transaction);
        assert_eq!(
            m.up,
            "-- create the table\nCREATE TABLE users (id INT PRIMARY KEY);\n"
        );
        assert_eq!(m.down.as_deref(), Some("DROP TABLE users;\n"));
        assert_eq!(m.checksum, checksum(&m.up, m.down.as_deref()));
        assert_eq!(m.checksum.len(), 64);

        let m = one("1_x.sql", "SELECT 1;").expect("loads");
        assert_eq!(m.down, None);
        // A marker with no undo statement: a no-op undo.
        let m = one("1_x.sql", "SELECT 1;\n-- @UNDO\n-- nothing to undo\n").expect("loads");
        assert_eq!(m.down.as_deref(), Some(""));
    }

    #[test]
    fn directives() {
        let m = one(
            "1_x.sql",
            "\n-- backfill\n-- @NO_TRANSACTION\n\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 100;\n\
             UPDATE u SET a = 1;\n-- @REPEAT_UNTIL_ZERO\nUPDATE v SET b = 2 LIMIT 10;\n\
             -- @UNDO\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM w LIMIT 5;\n",
        )
        .expect("loads");
        assert!(m.no_transaction);
        let flags: Vec<bool> = split(&m.up).iter().map(|s| s.repeat_until_zero).collect();
        assert_eq!(flags, [true, false, true]);
        let down = m.down.as_deref().map(split).unwrap_or_default();
        assert!(down[0].repeat_until_zero);
        // A block comment header does not count as SQL.
        let m = one("1_x.sql", "/* header */\n-- @NO_TRANSACTION\nSELECT 1;").expect("loads");
        assert!(m.no_transaction);
        // Ordinary `-- @...` comments after SQL are comments.
        assert!(one("1_x.sql", "SELECT 1;\n-- @todo tidy up\nSELECT 2;").is_ok());
    }

    #[test]
    fn unknown_directive() {
        let p = problems("1_x.sql", "-- @NO_TRANSACTION\n-- @FOO\nSELECT 1;");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(2));
        assert!(p[0].message.contains("unknown directive `-- @FOO`"));
        let p = problems("1_x.sql", "-- @no_transaction\nSELECT 1;");
        assert_eq!(p[0].line, Some(1));
        assert!(p[0].message.contains("misspelt"), "{p:?}");
        let p = problems("1_x.sql", "SELECT 1;\n-- @undo\nSELECT 2;");
        assert_eq!(p[0].line, Some(2));
    }

    #[test]
    fn directive_after_sql() {
        let p = problems("1_x.sql", "SELECT 1;\n-- @NO_TRANSACTION\nSELECT 2;");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(2));
        assert!(p[0].message.contains("directives must come before any SQL"));
        let p = problems(
            "1_x.sql",
            "SELECT 1;\n-- @UNDO\n-- @NO_TRANSACTION\nSELECT 2;",
        );
        assert_eq!(p[0].line, Some(3));
    }

    #[test]
    fn two_markers() {
        let p = problems(
            "1_x.sql",
            "SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @UNDO\nSELECT 3;",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(4));
        assert!(p[0].message.contains("line 2"), "{p:?}");
    }

    #[test]
    fn empty_forward() {
        for body in [
            "",
            "  \n-- just a comment\n",
            "-- @UNDO\nDROP TABLE t;",
            ";;",
        ] {
            let p = problems("1_x.sql", body);
            assert_eq!(p.len(), 1, "{body:?}: {p:?}");
            assert!(p[0].message.contains("no forward SQL statement"));
        }
    }

    #[test]
    fn repeat_until_zero_needs_no_transaction() {
        let p = problems("1_x.sql", "-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 10;");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(1));
        assert!(p[0].message.contains("@NO_TRANSACTION"));
        let p = problems(
            "1_x.sql",
            "SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 1;",
        );
        assert_eq!(p[0].line, Some(4));
    }

    #[test]
    fn repeat_until_zero_must_precede_a_statement() {
        let head = "-- @NO_TRANSACTION\n";
        // Inside a statement (missing `;`).
        let p = problems(
            "1_x.sql",
            &format!("{head}SELECT 1\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 1;"),
        );
        assert_eq!(p[0].line, Some(3));
        // At the end.
        let p = problems(
            "1_x.sql",
            &format!("{head}SELECT 1;\n-- @REPEAT_UNTIL_ZERO\n"),
        );
        assert_eq!(p[0].line, Some(3));
    }

    #[test]
    fn not_utf8() {
        let p = parse(Path::new("1_x.sql"), b"SELECT '\xff';").expect_err("bad utf-8");
        assert!(p[0].message.contains("UTF-8"));
        assert!(p[0].message.contains("offset 8"));
    }

    #[test]
    fn crlf_copy_has_the_same_checksum() {
        let unix =
            "CREATE TABLE t (a INT);  \nINSERT INTO t VALUES (1);\n\n-- @UNDO\nDROP TABLE t;\n\n";
        let dos = unix.replace('\n', "\r\n");
        let mac = unix.replace('\n', "\r");
        let a = one("1_t.sql", unix).expect("unix");
        let b = one("1_t.sql", &dos).expect("dos");
        let c = one("1_t.sql", &mac).expect("mac");
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.checksum, c.checksum);
        assert_eq!(checksum("a\r\nb \t\r\n", None), checksum("a\nb", None));
        // Content changes, undo presence and undo content all change it.
        assert_ne!(checksum("a", None), checksum("b", None));
        assert_ne!(checksum("a", None), checksum("a", Some("")));
        assert_ne!(checksum("a", Some("x")), checksum("a", Some("y")));
        // Known values: SHA-256 of the normalised text, as `sha256sum` gives it.
        assert_eq!(
            checksum("SELECT 1;\n", None),
            "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a"
        );
        assert_eq!(
            checksum("SELECT 1;\r\n", Some("SELECT 2;  \n\n")),
            "183903103fcdc47575381ebe8bdb930ebbae6c9bc132af45145d254b8913403f"
        );
    }

    #[test]
    fn load_sorted_and_ignoring_what_it_should() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "10_ten.sql", b"SELECT 10;");
        write(dir.path(), "002_two.sql", b"SELECT 2;");
        write(dir.path(), "README.md", b"not sql");
        write(dir.path(), ".hidden.sql", b"whatever");
        write(dir.path(), "other/5_five.sql", b"SELECT 5;");
        let set = load(dir.path(), None).expect("loads");
        let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
        assert_eq!(versions, [2, 10]);
        // An environment that has no directory changes nothing.
        assert_eq!(load(dir.path(), Some("prod")).expect("loads"), set);
        assert_eq!(load(dir.path(), Some("")).expect("loads"), set);
    }

    #[test]
    fn environment_merge_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "1_a.sql", b"SELECT 1;");
        write(dir.path(), "3_c.sql", b"SELECT 3;");
        write(dir.path(), "dev/2_seed.sql", b"INSERT INTO t VALUES (2);");
        write(dir.path(), "dev/4_more.sql", b"SELECT 4;");
        write(dir.path(), "prod/2_other.sql", b"SELECT 2;");
        let set = load(dir.path(), Some("dev")).expect("loads");
        let names: Vec<&str> = set.iter().map(|m| m.slug.as_str()).collect();
        assert_eq!(names, ["a", "seed", "c", "more"]);
        assert!(set[1].path.ends_with("dev/2_seed.sql"));
        let set = load(dir.path(), None).expect("loads");
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn duplicate_version_across_environment_names_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let common = write(dir.path(), "2_common.sql", b"SELECT 1;");
        let env = write(dir.path(), "prod/002_env.sql", b"SELECT 2;");
        let p = load(dir.path(), Some("prod")).expect_err("duplicate");
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("version 2 is used twice"));
        assert!(p[0].message.contains(&common.display().to_string()));
        assert!(p[0].message.contains(&env.display().to_string()));
    }

    #[test]
    fn missing_and_empty_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path(), None), Ok(Vec::new()));
        let missing = dir.path().join("nope");
        let p = load(&missing, None).expect_err("missing");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, missing);
        assert!(p[0].message.contains("does not exist"));
    }

    #[test]
    fn many_problems_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "1_ok.sql", b"SELECT 1;");
        write(dir.path(), "Bad.sql", b"SELECT 1;");
        write(dir.path(), "0_zero.sql", b"SELECT 1;");
        write(dir.path(), "2_bin.sql", b"\xfe\xff");
        write(
            dir.path(),
            "3_markers.sql",
            b"SELECT 1;\n-- @UNDO\n-- @UNDO\n-- @NO_TRANSACTION\n",
        );
        write(dir.path(), "4_dir.sql", b"-- @WHAT\nSELECT 1;");
        write(dir.path(), "5_empty.sql", b"");
        write(dir.path(), "5_dup.sql", b"SELECT 5;");
        let p = load(dir.path(), None).expect_err("problems");
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let count = |file: &str| p.iter().filter(|p| p.path.ends_with(file)).count();
        assert_eq!(count("Bad.sql"), 1, "{shown:#?}");
        assert_eq!(count("0_zero.sql"), 1, "{shown:#?}");
        assert_eq!(count("2_bin.sql"), 1, "{shown:#?}");
        assert_eq!(count("3_markers.sql"), 2, "{shown:#?}");
        assert_eq!(count("4_dir.sql"), 1, "{shown:#?}");
        // 5_empty: empty forward and the duplicate version.
        assert_eq!(count("5_empty.sql"), 2, "{shown:#?}");
        assert_eq!(count("1_ok.sql"), 0, "{shown:#?}");
        assert_eq!(p.len(), 8, "{shown:#?}");
        // Sorted file by file, and displayed with the line when there is one.
        let mut sorted = p.clone();
        sorted.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        assert_eq!(p, sorted);
        assert!(shown.iter().any(|s| s.ends_with("4_dir.sql:1: unknown directive `-- @WHAT`; the directives are `-- @NO_TRANSACTION` and `-- @REPEAT_UNTIL_ZERO` (and the `-- @UNDO` marker)")), "{shown:#?}");
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "1_secret.sql", b"SELECT 1;");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
        if fs::read(&path).is_ok() {
            return; // running as root: permissions are not enforced
        }
        let p = load(dir.path(), None).expect_err("unreadable");
        assert!(p[0].message.contains("cannot read the file"), "{p:?}");
    }

    proptest! {
        #[test]
        fn version_order_is_numeric_order(
            versions in proptest::collection::btree_set(1i64..1_000_000, 1..8),
            zeros in proptest::collection::vec(0usize..4, 8),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            for (i, v) in versions.iter().enumerate() {
                let name = format!("{}{v}_m{i}.sql", "0".repeat(zeros[i]));
                write(dir.path(), &name, b"SELECT 1;");
            }
            let set = load(dir.path(), None).expect("loads");
            let got: Vec<i64> = set.iter().map(|m| m.version).collect();
            let want: Vec<i64> = versions.into_iter().collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(Path::new("1_x.sql"), &body);
        }

        #[test]
        fn slugify_gives_valid_names(description in ".{0,30}") {
            if let Some(slug) = slugify(&description) {
                prop_assert!(parse_name(&file_name(1, &slug)).is_ok());
            }
        }
    }
}

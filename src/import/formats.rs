//! The readers of each tool's layout, turning its files into [`Foreign`] migrations (the
//! formats are described in the parent module's docs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    Foreign, ImportProblem, Line, OrderKey, Tool, canonical_version, lines_of, numeric_key,
    problem, version_key,
};

/// Reads `src` as `tool`'s layout: the migrations read cleanly, and the problems found (a
/// directory-wide problem, such as a bad `--dialect`, is the only one returned as `Err`).
pub(crate) fn read(
    tool: Tool,
    src: &Path,
    dialect: Option<&str>,
) -> Result<(Vec<Foreign>, Vec<ImportProblem>), Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let dialect = match (tool, dialect) {
        (_, None) => None,
        (Tool::Pop, Some(d)) => match canonical_dialect(d) {
            Some(d @ ("postgres" | "cockroach")) => Some(d),
            _ => {
                return Err(vec![problem(
                    src,
                    None,
                    format!("`--dialect {d}`: expected `postgres` or `cockroach`"),
                )]);
            }
        },
        (_, Some(_)) => {
            return Err(vec![problem(
                src,
                None,
                format!("`--dialect` only applies to pop's layout, not {tool}'s"),
            )]);
        }
    };
    let recursive = matches!(tool, Tool::Flyway | Tool::Pop);
    let files = list(src, recursive, &mut problems);
    let found = match tool {
        Tool::GolangMigrate => autocommit(
            pairs(golang_migrate(&files, &mut problems), &mut problems),
            true,
        ),
        Tool::Sqlx => pairs(sqlx(&files, &mut problems), &mut problems),
        Tool::Flyway => autocommit(pairs(flyway(&files, &mut problems), &mut problems), false),
        Tool::Pop => pairs(pop(&files, dialect, &mut problems), &mut problems),
        Tool::Goose => goose(&files, &mut problems),
        Tool::Dbmate => dbmate(&files, &mut problems),
        Tool::Diesel => diesel(src, &mut problems),
    };
    // Migrations with a problem of their own are left out; the others are still checked.
    let found = found
        .into_iter()
        .filter(|f| !problems.iter().any(|p| f.from.contains(&p.path)))
        .collect();
    Ok((found, problems))
}

/// Marks migrations that the tool runs outside a transaction because of what they contain.
///
/// golang-migrate sends each file as one query string without a transaction of its own, so a
/// file holding exactly one statement that PostgreSQL refuses inside a transaction block
/// (`CREATE INDEX CONCURRENTLY`, ...) runs autocommitted there (`single`). Flyway's
/// PostgreSQL parser runs a migration without a transaction when any of its statements is
/// one of those (`!single`).
fn autocommit(mut found: Vec<Foreign>, single: bool) -> Vec<Foreign> {
    for f in &mut found {
        for section in std::iter::once(&f.up).chain(f.down.as_ref()) {
            let text: String = section.iter().map(|l| l.text.as_str()).collect();
            let statements = crate::split::split(&text);
            let hit = if single {
                statements.len() == 1 && outside_transaction(&statements[0].text)
            } else {
                statements.iter().any(|s| outside_transaction(&s.text))
            };
            f.no_transaction |= hit;
        }
    }
    found
}

/// A statement PostgreSQL refuses inside a transaction block.
pub(crate) fn outside_transaction(statement: &str) -> bool {
    use crate::split::{TokenKind, tokens};
    let words: Vec<String> = tokens(statement)
        .into_iter()
        .filter(|t| t.kind == TokenKind::Word)
        .take(6)
        .map(|t| statement[t.start..t.end].to_ascii_uppercase())
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..]
        | ["DROP", "INDEX", "CONCURRENTLY", ..]
        | ["VACUUM", ..]
        | ["ALTER", "SYSTEM", ..]
        | ["DISCARD", "ALL", ..]
        | ["CREATE" | "DROP", "DATABASE" | "TABLESPACE", ..] => true,
        ["REINDEX", rest @ ..] => rest.contains(&"CONCURRENTLY"),
        _ => false,
    }
}

/// The regular, non-hidden files of `dir` (and its sub-directories when `recursive`), sorted.
fn list(dir: &Path, recursive: bool, problems: &mut Vec<ImportProblem>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                format!("cannot read the directory: {e}"),
            ));
            return out;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(problem(
                    dir,
                    None,
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                if recursive {
                    out.extend(list(&path, true, problems));
                }
            }
            Ok(m) if m.is_file() => out.push(path),
            Ok(_) => {}
            Err(e) => problems.push(problem(&path, None, format!("cannot read: {e}"))),
        }
    }
    out.sort();
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The file as UTF-8 text (what the loader requires).
fn read_text(path: &Path, problems: &mut Vec<ImportProblem>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            // A byte-order mark would end up inside the file once a directive line precedes it.
            Ok(s) => Some(s.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(s)),
            Err(e) => {
                problems.push(problem(
                    path,
                    None,
                    format!(
                        "is not valid UTF-8 (first bad byte at offset {}); save it as UTF-8",
                        e.utf8_error().valid_up_to()
                    ),
                ));
                None
            }
        },
        Err(e) => {
            problems.push(problem(path, None, format!("cannot read the file: {e}")));
            None
        }
    }
}

fn is_crlf(text: &str) -> bool {
    text.contains("\r\n")
}

/// A comment or blank line (what may precede a goose/dbmate up marker).
fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with("--")
}

/// Which tool a (non-crdb-migrate) `.sql` file name belongs to, for [`super::detect`].
pub(crate) fn name_tool(name: &str) -> Option<Tool> {
    if let Some(m) = pop_name(name)
        && (m.dialect.is_some() || m.autocommit)
    {
        return Some(Tool::Pop);
    }
    if golang_migrate_name(name).is_some() {
        return Some(Tool::GolangMigrate);
    }
    if let FlywayName::Versioned(..) | FlywayName::Refused(_) = flyway_name(name) {
        return Some(Tool::Flyway);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Up/down pair layouts
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// One file of a pair layout.
struct Candidate {
    original: String,
    order: OrderKey,
    name: String,
    direction: Direction,
    path: PathBuf,
    no_transaction: bool,
    /// A settings file that belongs to it (Flyway `.sql.conf`).
    extra: Option<PathBuf>,
}

/// Pairs ups with downs by version: two ups (or downs) for a version and a down without an up
/// are problems.
fn pairs(candidates: Vec<Candidate>, problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    let mut by_version: BTreeMap<String, (Vec<Candidate>, Vec<Candidate>)> = BTreeMap::new();
    for c in candidates {
        let slot = by_version.entry(c.original.clone()).or_default();
        match c.direction {
            Direction::Up => slot.0.push(c),
            Direction::Down => slot.1.push(c),
        }
    }
    let mut out = Vec::new();
    for (version, (ups, downs)) in by_version {
        for (list, what) in [(&ups, "up"), (&downs, "down")] {
            if list.len() > 1 {
                let names: Vec<String> =
                    list.iter().map(|c| c.path.display().to_string()).collect();
                for c in list {
                    problems.push(problem(
                        &c.path,
                        None,
                        format!(
                            "version {version} has {} {what} files ({}); keep one",
                            list.len(),
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        let Some(up) = ups.into_iter().next() else {
            for d in &downs {
                problems.push(problem(
                    &d.path,
                    None,
                    format!(
                        "a down migration for version {version} without an up migration; add the \
                         up file or remove this one"
                    ),
                ));
            }
            continue;
        };
        let mut read = |p: &Path| read_text(p, problems);
        let Some(up_text) = read(&up.path) else {
            continue;
        };
        let down = downs.into_iter().next();
        let down_text = match &down {
            Some(d) => match read(&d.path) {
                Some(t) => Some(t),
                None => continue,
            },
            None => None,
        };
        let mut from = vec![up.path.clone()];
        from.extend(up.extra.clone());
        if let Some(d) = &down {
            from.push(d.path.clone());
            from.extend(d.extra.clone());
        }
        out.push(Foreign {
            original: up.original,
            order: up.order,
            name: up.name,
            crlf: is_crlf(&up_text) || down_text.as_deref().is_some_and(is_crlf),
            up: lines_of(&up.path, &up_text),
            no_transaction: up.no_transaction || down.as_ref().is_some_and(|d| d.no_transaction),
            down: down
                .as_ref()
                .zip(down_text.as_deref())
                .map(|(d, t)| lines_of(&d.path, t)),
            from,
        });
    }
    out
}

/// golang-migrate's `^([0-9]+)_(.*)\.(down|up)\.(.*)$`: (version digits, name, direction, ext).
fn golang_migrate_name(name: &str) -> Option<(&str, &str, Direction, &str)> {
    let digits_end = name.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 || !name[digits_end..].starts_with('_') {
        return None;
    }
    let rest = &name[digits_end + 1..];
    // `(.*)` is greedy: the last `.up.` / `.down.` splits name and extension.
    let up = rest.rfind(".up.").map(|i| (i, Direction::Up, 4));
    let down = rest.rfind(".down.").map(|i| (i, Direction::Down, 6));
    let (i, direction, len) = match (up, down) {
        (Some(u), Some(d)) => {
            if u.0 > d.0 {
                u
            } else {
                d
            }
        }
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return None,
    };
    Some((&name[..digits_end], &rest[..i], direction, &rest[i + len..]))
}

fn golang_migrate(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        let Some((digits, title, direction, ext)) = golang_migrate_name(&name) else {
            continue;
        };
        if ext != "sql" {
            problems.push(problem(
                path,
                None,
                format!("a `.{ext}` migration; only SQL migrations can be imported"),
            ));
            continue;
        }
        if digits.parse::<u64>().is_err() {
            problems.push(problem(
                path,
                None,
                format!("the version `{digits}` does not fit golang-migrate's unsigned 64 bits"),
            ));
            continue;
        }
        out.push(Candidate {
            original: super::strip_zeros(digits),
            order: numeric_key(digits),
            name: title.to_string(),
            direction,
            path: path.clone(),
            no_transaction: false,
            extra: None,
        });
    }
    out
}

fn sqlx(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        // sqlx: `<version>_<description>.sql`, `.up.sql`, `.down.sql`; others are skipped.
        let Some((version, rest)) = name.split_once('_') else {
            continue;
        };
        if !rest.ends_with(".sql") {
            continue;
        }
        if version.is_empty()
            || !version.bytes().all(|b| b.is_ascii_digit())
            || version.parse::<i64>().is_err()
        {
            problems.push(problem(
                path,
                None,
                format!(
                    "the version `{version}` is not a number sqlx accepts (a signed 64-bit integer)"
                ),
            ));
            continue;
        }
        let (description, direction) = if let Some(d) = rest.strip_suffix(".up.sql") {
            (d, Direction::Up)
        } else if let Some(d) = rest.strip_suffix(".down.sql") {
            (d, Direction::Down)
        } else {
            (&rest[..rest.len() - 4], Direction::Up)
        };
        let no_transaction = std::fs::read(path)
            .map(|b| b.starts_with(b"-- no-transaction"))
            .unwrap_or(false);
        out.push(Candidate {
            original: super::strip_zeros(version),
            order: numeric_key(version),
            name: description.to_string(),
            direction,
            path: path.clone(),
            no_transaction,
            extra: None,
        });
    }
    out
}

/// What a Flyway file name is.
enum FlywayName<'a> {
    /// `V`/`U` + version + `__` + description.
    Versioned(Direction, &'a str, &'a str),
    /// A file Flyway would use that cannot be imported, and why.
    Refused(String),
    /// Not a Flyway migration.
    Other,
}

/// Flyway's SQL callback events all start with one of these (`beforeMigrate`,
/// `afterEachMigrateError`, `createSchema`, ...).
const FLYWAY_CALLBACKS: [&str; 3] = ["before", "after", "createschema"];

fn flyway_name(name: &str) -> FlywayName<'_> {
    let Some(stem) = name.strip_suffix(".sql") else {
        return FlywayName::Other;
    };
    if stem.starts_with("R__") {
        return FlywayName::Refused(
            "a Flyway repeatable migration (`R__`): it reruns whenever its checksum changes, \
             which crdb-migrate has no equivalent for; turn it into a versioned migration"
                .into(),
        );
    }
    let event = stem.split("__").next().unwrap_or(stem).to_ascii_lowercase();
    if FLYWAY_CALLBACKS.iter().any(|c| event.starts_with(c)) {
        return FlywayName::Refused(
            "a Flyway callback script: crdb-migrate has no callbacks; fold it into a migration"
                .into(),
        );
    }
    let mut chars = stem.chars();
    let prefix = chars.next();
    let Some((version, description)) = chars.as_str().split_once("__") else {
        return FlywayName::Other;
    };
    if version.is_empty()
        || !version
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
        || canonical_version(Tool::Flyway, version).is_none()
    {
        return FlywayName::Other;
    }
    match prefix {
        Some('V') => FlywayName::Versioned(Direction::Up, version, description),
        Some('U') => FlywayName::Versioned(Direction::Down, version, description),
        Some('B') => FlywayName::Refused(
            "a Flyway baseline migration (`B`): import the versioned migrations it stands for, \
             or use `crdb-migrate baseline`"
                .into(),
        ),
        _ => FlywayName::Other,
    }
}

fn flyway(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".java") || lower.ends_with(".class") || lower.ends_with(".kt") {
            problems.push(problem(
                path,
                None,
                "a Flyway Java migration or callback: only SQL can be imported; rewrite it as SQL",
            ));
            continue;
        }
        let (direction, version, description) = match flyway_name(&name) {
            FlywayName::Versioned(d, v, desc) => (d, v, desc),
            FlywayName::Refused(why) => {
                problems.push(problem(path, None, why));
                continue;
            }
            FlywayName::Other => continue,
        };
        let Some(canonical) = canonical_version(Tool::Flyway, version) else {
            continue;
        };
        if let Some(text) = read_text(path, problems) {
            for l in lines_of(path, &text) {
                if l.text.contains("${") {
                    problems.push(problem(
                        path,
                        Some(l.line),
                        "uses a Flyway placeholder (`${...}`), a template crdb-migrate does not \
                         expand; write the value in",
                    ));
                }
            }
        }
        let conf = PathBuf::from(format!("{}.conf", path.display()));
        let mut no_transaction = false;
        let mut extra = None;
        if conf.is_file() {
            extra = Some(conf.clone());
            if let Some(text) = read_text(&conf, problems) {
                for l in lines_of(&conf, &text) {
                    let c = l.content().trim();
                    if c.is_empty() || c.starts_with('#') {
                        continue;
                    }
                    let (key, value) = c.split_once('=').unwrap_or((c, ""));
                    match (key.trim(), value.trim().to_ascii_lowercase().as_str()) {
                        ("executeInTransaction", "false") => no_transaction = true,
                        ("executeInTransaction", "true") => {}
                        ("encoding", "utf-8" | "utf8") => {}
                        _ => problems.push(problem(
                            &conf,
                            Some(l.line),
                            format!(
                                "the script setting `{c}` has no crdb-migrate equivalent (only \
                                 `executeInTransaction` and a UTF-8 `encoding` do)"
                            ),
                        )),
                    }
                }
            }
        }
        out.push(Candidate {
            order: version_key(Tool::Flyway, &canonical),
            original: canonical,
            name: description.replace("__", "_"),
            direction,
            path: path.clone(),
            no_transaction,
            extra,
        });
    }
    out
}

/// A pop file name: `^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql|fizz)$`.
struct PopName<'a> {
    version: &'a str,
    name: &'a str,
    dialect: Option<&'a str>,
    autocommit: bool,
    direction: Direction,
    fizz: bool,
}

fn pop_name(file: &str) -> Option<PopName<'_>> {
    let digits_end = file.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 || !file[digits_end..].starts_with('_') {
        return None;
    }
    let rest = &file[digits_end + 1..];
    let mut parts = rest.split('.');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let parts: Vec<&str> = parts.collect();
    let (ext, parts) = parts.split_last()?;
    let (direction, middle) = parts.split_last()?;
    let fizz = match *ext {
        "sql" => false,
        "fizz" => true,
        _ => return None,
    };
    let direction = match *direction {
        "up" => Direction::Up,
        "down" => Direction::Down,
        _ => return None,
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let (dialect, autocommit) = match middle {
        [] => (None, false),
        ["autocommit"] => (None, true),
        [d] if token(d) => (Some(*d), false),
        [d, "autocommit"] if token(d) => (Some(*d), true),
        _ => return None,
    };
    Some(PopName {
        version: &file[..digits_end],
        name,
        dialect,
        autocommit,
        direction,
        fizz,
    })
}

/// pop's canonical dialect names (`pop.CanonicalDialect`).
fn canonical_dialect(d: &str) -> Option<&'static str> {
    Some(match d.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "pg" => "postgres",
        "cockroach" | "cockroachdb" | "crdb" => "cockroach",
        "mysql" => "mysql",
        "mariadb" => "mariadb",
        "sqlite" | "sqlite3" => "sqlite3",
        _ => return None,
    })
}

fn pop(
    files: &[PathBuf],
    dialect: Option<&str>,
    problems: &mut Vec<ImportProblem>,
) -> Vec<Candidate> {
    let mut chosen: BTreeMap<(String, bool), (bool, Candidate)> = BTreeMap::new();
    for path in files {
        let file = file_name(path);
        let Some(m) = pop_name(&file) else {
            continue;
        };
        if m.fizz {
            problems.push(problem(
                path,
                None,
                "a fizz migration: fizz is pop's own language, translated per dialect when it \
                 runs; write the SQL it produces as a `.sql` migration",
            ));
            continue;
        }
        let file_dialect = match m.dialect.map(|d| (d, canonical_dialect(d))) {
            None => None,
            Some((_, Some(d))) => Some(d),
            Some((d, None)) => {
                problems.push(problem(
                    path,
                    None,
                    format!("unsupported pop dialect `{d}`"),
                ));
                continue;
            }
        };
        let specific = match (file_dialect, dialect) {
            (None, _) => false,
            (Some(_), None) => {
                problems.push(problem(
                    path,
                    None,
                    "a dialect variant: pass `--dialect postgres` or `--dialect cockroach` to \
                     pick the variants to import",
                ));
                continue;
            }
            (Some(f), Some(d)) if f == d => true,
            (Some(_), Some(_)) => continue, // another database's variant
        };
        if let Some(text) = read_text(path, problems) {
            for l in lines_of(path, &text) {
                if l.text.contains("{{") {
                    problems.push(problem(
                        path,
                        Some(l.line),
                        "uses a Go template (`{{ ... }}`), which pop expands per dialect and \
                         crdb-migrate does not; write the SQL for your database",
                    ));
                }
            }
        }
        let c = Candidate {
            original: m.version.to_string(),
            order: version_key(Tool::Pop, m.version),
            name: m.name.to_string(),
            direction: m.direction,
            path: path.clone(),
            no_transaction: m.autocommit,
            extra: None,
        };
        let key = (m.version.to_string(), m.direction == Direction::Up);
        match chosen.get(&key) {
            // The dialect's own variant wins over the dialect-free file, as in pop.
            Some((true, _)) if !specific => {}
            Some((existing, other)) if *existing == specific => {
                problems.push(problem(
                    path,
                    None,
                    format!(
                        "version {} has two {} files ({} and this one); keep one",
                        m.version,
                        if m.direction == Direction::Up {
                            "up"
                        } else {
                            "down"
                        },
                        other.path.display()
                    ),
                ));
            }
            _ => {
                chosen.insert(key, (specific, c));
            }
        }
    }
    chosen.into_values().map(|(_, c)| c).collect()
}

// ---------------------------------------------------------------------------------------------
// One-file layouts
// ---------------------------------------------------------------------------------------------

/// The lower-cased goose annotation on `line` (`up`, `down`, `statementbegin`, ...), if it is one.
pub(crate) fn goose_annotation(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix("--")?.trim_start_matches('-').trim_start();
    let cmd = rest.strip_prefix("+goose")?;
    Some(cmd.trim().to_ascii_lowercase())
}

/// dbmate's `-- migrate:up` / `-- migrate:down` line: (direction, options).
pub(crate) fn dbmate_marker(line: &str) -> Option<(&'static str, Vec<String>)> {
    let rest = line.trim_end().strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    let (dir, opts) = if let Some(o) = rest.strip_prefix("up") {
        ("up", o)
    } else if let Some(o) = rest.strip_prefix("down") {
        ("down", o)
    } else {
        return None;
    };
    if !(opts.is_empty() || opts.starts_with(char::is_whitespace)) {
        return None;
    }
    Some((dir, opts.split_whitespace().map(str::to_string).collect()))
}

/// The numeric prefix of `<digits>_...`, as goose's `NumericComponent` wants it.
fn goose_version(name: &str) -> Option<&str> {
    let (digits, _) = name.split_once('_')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
        .filter(|d| d.parse::<i64>().is_ok_and(|v| v > 0))
}

fn goose(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        if let Some(stem) = name.strip_suffix(".go") {
            if !stem.ends_with("_test") && goose_version(stem).is_some() {
                problems.push(problem(
                    path,
                    None,
                    "a goose Go migration: only SQL migrations can be imported; rewrite it as SQL",
                ));
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let Some(digits) = goose_version(stem) else {
            continue;
        };
        let Some(text) = read_text(path, problems) else {
            continue;
        };
        let mut up: Vec<Line> = Vec::new();
        let mut down: Option<Vec<Line>> = None;
        let mut seen_up = false;
        let mut no_transaction = false;
        let mut block: Option<usize> = None;
        for l in lines_of(path, &text) {
            let Some(cmd) = goose_annotation(l.content()) else {
                match (&mut down, seen_up) {
                    (Some(d), _) => d.push(l),
                    (None, true) => up.push(l),
                    (None, false) if is_comment_or_blank(l.content()) => up.push(l),
                    (None, false) => problems.push(problem(
                        path,
                        Some(l.line),
                        "SQL before `-- +goose Up`; goose refuses it, move it below the annotation",
                    )),
                }
                continue;
            };
            let at = Some(l.line);
            match cmd.as_str() {
                "up" if seen_up => {
                    problems.push(problem(path, at, "a second `-- +goose Up`; keep one"))
                }
                "up" => seen_up = true,
                "down" if !seen_up || down.is_some() => problems.push(problem(
                    path,
                    at,
                    "`-- +goose Down` without one `-- +goose Up` before it",
                )),
                "down" => down = Some(Vec::new()),
                "statementbegin" if block.is_some() => problems.push(problem(
                    path,
                    at,
                    "`StatementBegin` inside another StatementBegin block",
                )),
                "statementbegin" => block = Some(l.line),
                "statementend" if block.is_none() => {
                    problems.push(problem(path, at, "`StatementEnd` without `StatementBegin`"))
                }
                "statementend" => block = None,
                "no transaction" => no_transaction = true,
                "envsub on" => problems.push(problem(
                    path,
                    at,
                    "`-- +goose ENVSUB ON` makes the file a template (environment variables are \
                     substituted when goose runs it); write the values in",
                )),
                "envsub off" => {}
                other => problems.push(problem(
                    path,
                    at,
                    format!("unknown goose annotation `{other}`"),
                )),
            }
        }
        if let Some(begin) = block {
            problems.push(problem(
                path,
                Some(begin),
                "`StatementBegin` without `StatementEnd`",
            ));
        }
        if !seen_up {
            problems.push(problem(
                path,
                None,
                "no `-- +goose Up` annotation; goose refuses such a file",
            ));
            continue;
        }
        out.push(Foreign {
            original: super::strip_zeros(digits),
            order: numeric_key(digits),
            name: stem[digits.len() + 1..].to_string(),
            crlf: is_crlf(&text),
            up,
            down,
            no_transaction,
            from: vec![path.clone()],
        });
    }
    out
}

fn dbmate(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    let mut out = Vec::new();
    for path in files {
        let name = file_name(path);
        // dbmate: `^(\d+).*\.sql$`, applied in file-name order.
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let digits_end = stem
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(stem.len());
        if digits_end == 0 {
            continue;
        }
        let digits = &stem[..digits_end];
        let Some(text) = read_text(path, problems) else {
            continue;
        };
        let mut up: Vec<Line> = Vec::new();
        let mut down: Option<Vec<Line>> = None;
        let mut seen_up = false;
        let mut no_transaction = false;
        for l in lines_of(path, &text) {
            let Some((dir, options)) = dbmate_marker(l.content()) else {
                match (&mut down, seen_up) {
                    (Some(d), _) => d.push(l),
                    (None, true) => up.push(l),
                    (None, false) if is_comment_or_blank(l.content()) => up.push(l),
                    (None, false) => problems.push(problem(
                        path,
                        Some(l.line),
                        "SQL before `-- migrate:up`; move it below the marker",
                    )),
                }
                continue;
            };
            let at = Some(l.line);
            for o in &options {
                match o.as_str() {
                    "transaction:false" => no_transaction = true,
                    "transaction:true" => {}
                    _ => problems.push(problem(
                        path,
                        at,
                        format!("the dbmate option `{o}` has no crdb-migrate equivalent"),
                    )),
                }
            }
            match dir {
                "up" if seen_up => {
                    problems.push(problem(path, at, "a second `-- migrate:up`; keep one"))
                }
                "up" if down.is_some() => problems.push(problem(
                    path,
                    at,
                    "`-- migrate:up` after `-- migrate:down`; put the up section first",
                )),
                "up" => seen_up = true,
                _ if down.is_some() => {
                    problems.push(problem(path, at, "a second `-- migrate:down`; keep one"))
                }
                _ => down = Some(Vec::new()),
            }
        }
        if !seen_up {
            problems.push(problem(
                path,
                None,
                "no `-- migrate:up` marker; dbmate refuses such a file",
            ));
            continue;
        }
        out.push(Foreign {
            original: digits.to_string(),
            order: OrderKey::Text(name.clone()),
            name: stem[digits_end..].to_string(),
            crlf: is_crlf(&text),
            up,
            down,
            no_transaction,
            from: vec![path.clone()],
        });
    }
    out
}

fn diesel(src: &Path, problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(src) else {
        problems.push(problem(src, None, "cannot read the directory"));
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !file_name(p).starts_with('.') && p.join("up.sql").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let dir_name = file_name(&dir);
        let (raw, name) = dir_name.split_once('_').unwrap_or((&dir_name, ""));
        let version = raw.replace('-', "");
        let up_path = dir.join("up.sql");
        let down_path = dir.join("down.sql");
        let meta_path = dir.join("metadata.toml");
        let Some(up_text) = read_text(&up_path, problems) else {
            continue;
        };
        let mut from = vec![up_path.clone()];
        let down_text = if down_path.is_file() {
            from.push(down_path.clone());
            match read_text(&down_path, problems) {
                Some(t) => Some(t),
                None => continue,
            }
        } else {
            None
        };
        let mut no_transaction = false;
        if meta_path.is_file() {
            from.push(meta_path.clone());
            if let Some(text) = read_text(&meta_path, problems) {
                for l in lines_of(&meta_path, &text) {
                    let c = l.content().split('#').next().unwrap_or("").trim();
                    if c.is_empty() {
                        continue;
                    }
                    let (key, value) = c.split_once('=').unwrap_or((c, ""));
                    match (key.trim(), value.trim()) {
                        ("run_in_transaction", "false") => no_transaction = true,
                        ("run_in_transaction", "true") => {}
                        _ => problems.push(problem(
                            &meta_path,
                            Some(l.line),
                            format!("the Diesel setting `{c}` has no crdb-migrate equivalent"),
                        )),
                    }
                }
            }
        }
        out.push(Foreign {
            order: OrderKey::Text(version.clone()),
            original: version,
            name: name.to_string(),
            crlf: is_crlf(&up_text) || down_text.as_deref().is_some_and(is_crlf),
            up: lines_of(&up_path, &up_text),
            down: down_text.as_deref().map(|t| lines_of(&down_path, t)),
            no_transaction,
            from,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golang_migrate_names() {
        let (v, n, d, e) = golang_migrate_name("0001_initial_schema.up.sql").expect("match");
        assert_eq!(
            (v, n, d, e),
            ("0001", "initial_schema", Direction::Up, "sql")
        );
        assert!(golang_migrate_name("1_x.down.sql").is_some_and(|m| m.2 == Direction::Down));
        assert!(golang_migrate_name("x_1.up.sql").is_none());
        assert!(golang_migrate_name("1_x.sql").is_none());
    }

    #[test]
    fn pop_names() {
        let m = pop_name("20240101_add.cockroach.autocommit.up.sql").expect("match");
        assert_eq!(
            (m.version, m.name, m.dialect, m.autocommit),
            ("20240101", "add", Some("cockroach"), true)
        );
        let m = pop_name("1_a.autocommit.down.sql").expect("match");
        assert!(m.autocommit && m.dialect.is_none() && m.direction == Direction::Down);
        assert!(pop_name("1_a.up.fizz").is_some_and(|m| m.fizz));
        assert!(pop_name("1_a.b.c.d.up.sql").is_none());
        assert!(pop_name("1_a.sql").is_none());
    }

    #[test]
    fn flyway_names() {
        assert!(matches!(
            flyway_name("V1_1__add_x.sql"),
            FlywayName::Versioned(Direction::Up, "1_1", "add_x")
        ));
        assert!(matches!(
            flyway_name("U2.0.1__undo.sql"),
            FlywayName::Versioned(Direction::Down, "2.0.1", _)
        ));
        assert!(matches!(
            flyway_name("R__views.sql"),
            FlywayName::Refused(_)
        ));
        assert!(matches!(
            flyway_name("afterMigrate.sql"),
            FlywayName::Refused(_)
        ));
        assert!(matches!(
            flyway_name("B5__base.sql"),
            FlywayName::Refused(_)
        ));
        assert!(matches!(flyway_name("notes.sql"), FlywayName::Other));
        assert!(matches!(flyway_name("V1__x.txt"), FlywayName::Other));
    }

    #[test]
    fn statements_outside_a_transaction() {
        assert!(outside_transaction(
            "create unique index concurrently i on t (a)"
        ));
        assert!(outside_transaction("DROP INDEX CONCURRENTLY IF EXISTS i"));
        assert!(outside_transaction("REINDEX TABLE CONCURRENTLY t"));
        assert!(outside_transaction("VACUUM ANALYZE t"));
        assert!(!outside_transaction("CREATE INDEX i ON t (a)"));
        assert!(!outside_transaction(
            "REFRESH MATERIALIZED VIEW CONCURRENTLY v"
        ));
        assert!(!outside_transaction("-- VACUUM\nSELECT 1"));
    }

    #[test]
    fn markers() {
        assert_eq!(goose_annotation("-- +goose Up").as_deref(), Some("up"));
        assert_eq!(
            goose_annotation("--+goose NO TRANSACTION  ").as_deref(),
            Some("no transaction")
        );
        assert_eq!(goose_annotation("-- plain comment"), None);
        assert_eq!(
            dbmate_marker("-- migrate:up transaction:false"),
            Some(("up", vec!["transaction:false".to_string()]))
        );
        assert_eq!(dbmate_marker("--migrate:down").map(|m| m.0), Some("down"));
        assert_eq!(dbmate_marker("-- migrate:upper"), None);
    }
}

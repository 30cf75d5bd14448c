//! pop's layout: `<version>_<name>[.<dialect>][.autocommit].up.sql` / `.down.sql`, the
//! dialect variant picked by `--dialect`; `.fizz` files and Go templates are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::pairs::{Candidate, Direction};
use super::{file_name, read_text};
use crate::import::{ImportProblem, Tool, lines_of, problem, version_key};

/// What opens a Go template action in pop's SQL files.
const GO_TEMPLATE: &str = "{{";

/// A pop file name: `^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql|fizz)$`.
pub(super) struct PopName<'a> {
    pub(super) version: &'a str,
    pub(super) name: &'a str,
    pub(super) dialect: Option<&'a str>,
    pub(super) autocommit: bool,
    pub(super) direction: Direction,
    pub(super) fizz: bool,
}

pub(super) fn pop_name(file: &str) -> Option<PopName<'_>> {
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
pub(super) fn canonical_dialect(d: &str) -> Option<&'static str> {
    Some(match d.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "pg" => "postgres",
        "cockroach" | "cockroachdb" | "crdb" => "cockroach",
        "mysql" => "mysql",
        "mariadb" => "mariadb",
        "sqlite" | "sqlite3" => "sqlite3",
        _ => return None,
    })
}

pub(super) fn candidates(
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
        let Some(specific) = variant(path, &m, dialect, problems) else {
            continue;
        };
        go_templates(path, problems);
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

/// Whether `m` (the file at `path`) is imported with `--dialect` `dialect`: `Some(true)` for
/// the dialect's own variant, `Some(false)` for a dialect-free file, `None` to leave it out
/// (another database's variant, or a problem: fizz, an unknown dialect, no `--dialect`).
fn variant(
    path: &Path,
    m: &PopName<'_>,
    dialect: Option<&str>,
    problems: &mut Vec<ImportProblem>,
) -> Option<bool> {
    if m.fizz {
        problems.push(problem(
            path,
            None,
            "a fizz migration: fizz is pop's own language, translated per dialect when it \
             runs; write the SQL it produces as a `.sql` migration",
        ));
        return None;
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
            return None;
        }
    };
    match (file_dialect, dialect) {
        (None, _) => Some(false),
        (Some(_), None) => {
            problems.push(problem(
                path,
                None,
                "a dialect variant: pass `--dialect postgres` or `--dialect cockroach` to \
                 pick the variants to import",
            ));
            None
        }
        (Some(f), Some(d)) if f == d => Some(true),
        (Some(_), Some(_)) => None, // another database's variant
    }
}

/// Go template markers (`{{`) in the file at `path`: pop expands them, we cannot.
fn go_templates(path: &Path, problems: &mut Vec<ImportProblem>) {
    if let Some(text) = read_text(path, problems) {
        for l in lines_of(path, &text) {
            if l.text.contains(GO_TEMPLATE) {
                problems.push(problem(
                    path,
                    Some(l.line),
                    "uses a Go template (`{{ ... }}`), which pop expands per dialect and \
                     crdb-migrate does not; write the SQL for your database",
                ));
            }
        }
    }
}

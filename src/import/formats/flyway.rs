//! Flyway's layout: `V<version>__<description>.sql` and undo `U...` files with an optional
//! `.sql.conf`; repeatable, baseline, callback and Java migrations are refused.

use std::path::PathBuf;

use super::pairs::{Candidate, Direction};
use super::{file_name, read_text};
use crate::import::{ImportProblem, Tool, canonical_version, lines_of, problem, version_key};

/// What opens a Flyway placeholder (`${name}`).
const PLACEHOLDER: &str = "${";

/// What a Flyway file name is.
pub(super) enum FlywayName<'a> {
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

pub(super) fn flyway_name(name: &str) -> FlywayName<'_> {
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

pub(super) fn candidates(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
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
                if l.text.contains(PLACEHOLDER) {
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

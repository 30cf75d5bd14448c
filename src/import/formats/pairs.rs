//! Up/down pair layouts (golang-migrate, sqlx, Flyway, pop): one file per direction, paired
//! by version into one migration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, OrderKey, lines_of, problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Up,
    Down,
}

/// One file of a pair layout.
pub(super) struct Candidate {
    pub(super) original: String,
    pub(super) order: OrderKey,
    pub(super) name: String,
    pub(super) direction: Direction,
    pub(super) path: PathBuf,
    pub(super) no_transaction: bool,
    /// A settings file that belongs to it (Flyway `.sql.conf`).
    pub(super) extra: Option<PathBuf>,
}

/// Pairs ups with downs by version: two ups (or downs) for a version and a down without an up
/// are problems.
pub(super) fn pairs(candidates: Vec<Candidate>, problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
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

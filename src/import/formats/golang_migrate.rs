//! golang-migrate's layout: `<version>_<name>.up.sql` / `.down.sql`, version an unsigned integer.

use std::path::PathBuf;

use super::file_name;
use super::pairs::{Candidate, Direction};
use crate::import::{ImportProblem, numeric_key, problem, strip_zeros};

/// golang-migrate's `^([0-9]+)_(.*)\.(down|up)\.(.*)$`: (version digits, name, direction, ext).
pub(super) fn golang_migrate_name(name: &str) -> Option<(&str, &str, Direction, &str)> {
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

pub(super) fn candidates(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Candidate> {
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
            original: strip_zeros(digits),
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

//! dbmate's layout: one `<version>_<name>.sql` per migration with `-- migrate:up` and
//! `-- migrate:down` lines and their options (`transaction:false`).

use std::path::{Path, PathBuf};

use super::{Sections, file_name, is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, OrderKey, lines_of, problem};

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

pub(super) fn read(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
    files
        .iter()
        .filter_map(|path| read_file(path, problems))
        .collect()
}

/// One file: `^(\d+).*\.sql$` read (dbmate applies them in file-name order), others skipped.
fn read_file(path: &Path, problems: &mut Vec<ImportProblem>) -> Option<Foreign> {
    let name = file_name(path);
    let stem = name.strip_suffix(".sql")?;
    let digits_end = stem
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(stem.len());
    if digits_end == 0 {
        return None;
    }
    let digits = &stem[..digits_end];
    let text = read_text(path, problems)?;
    let s = sections(path, &text, problems)?;
    Some(Foreign {
        original: digits.to_string(),
        order: OrderKey::Text(name.clone()),
        name: stem[digits_end..].to_string(),
        crlf: is_crlf(&text),
        up: s.up,
        down: s.down,
        no_transaction: s.no_transaction,
        from: vec![path.to_path_buf()],
    })
}

/// The file's sections by its markers; `None` without a `-- migrate:up`.
fn sections(path: &Path, text: &str, problems: &mut Vec<ImportProblem>) -> Option<Sections> {
    let mut s = Sections::default();
    for l in lines_of(path, text) {
        let Some((dir, options)) = dbmate_marker(l.content()) else {
            s.push(
                l,
                "SQL before `-- migrate:up`; move it below the marker",
                problems,
            );
            continue;
        };
        let at = Some(l.line);
        for o in &options {
            match o.as_str() {
                "transaction:false" => s.no_transaction = true,
                "transaction:true" => {}
                _ => problems.push(problem(
                    path,
                    at,
                    format!("the dbmate option `{o}` has no crdb-migrate equivalent"),
                )),
            }
        }
        match dir {
            "up" if s.seen_up => {
                problems.push(problem(path, at, "a second `-- migrate:up`; keep one"))
            }
            "up" if s.down.is_some() => problems.push(problem(
                path,
                at,
                "`-- migrate:up` after `-- migrate:down`; put the up section first",
            )),
            "up" => s.seen_up = true,
            _ if s.down.is_some() => {
                problems.push(problem(path, at, "a second `-- migrate:down`; keep one"))
            }
            _ => s.down = Some(Vec::new()),
        }
    }
    if !s.seen_up {
        problems.push(problem(
            path,
            None,
            "no `-- migrate:up` marker; dbmate refuses such a file",
        ));
        return None;
    }
    Some(s)
}

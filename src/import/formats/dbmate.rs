//! dbmate's layout: one `<version>_<name>.sql` per migration with `-- migrate:up` and
//! `-- migrate:down` lines and their options (`transaction:false`).

use std::path::PathBuf;

use super::{file_name, is_comment_or_blank, is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, Line, OrderKey, lines_of, problem};

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

//! goose's layout: one `<version>_<name>.sql` per migration with `-- +goose Up` / `Down`,
//! `StatementBegin` / `StatementEnd` and `NO TRANSACTION` annotations; Go migrations refused.

use std::path::PathBuf;

use super::{file_name, is_comment_or_blank, is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, Line, lines_of, numeric_key, problem, strip_zeros};

/// The lower-cased goose annotation on `line` (`up`, `down`, `statementbegin`, ...), if it is one.
pub(crate) fn goose_annotation(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix("--")?.trim_start_matches('-').trim_start();
    let cmd = rest.strip_prefix("+goose")?;
    Some(cmd.trim().to_ascii_lowercase())
}

/// The numeric prefix of `<digits>_...`, as goose's `NumericComponent` wants it.
fn goose_version(name: &str) -> Option<&str> {
    let (digits, _) = name.split_once('_')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
        .filter(|d| d.parse::<i64>().is_ok_and(|v| v > 0))
}

pub(super) fn read(files: &[PathBuf], problems: &mut Vec<ImportProblem>) -> Vec<Foreign> {
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
            original: strip_zeros(digits),
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

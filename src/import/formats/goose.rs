//! goose's layout: one `<version>_<name>.sql` per migration with `-- +goose Up` / `Down`,
//! `StatementBegin` / `StatementEnd` and `NO TRANSACTION` annotations; Go migrations refused.

use std::path::{Path, PathBuf};

use super::{Sections, file_name, is_crlf, read_text};
use crate::import::{Foreign, ImportProblem, lines_of, numeric_key, problem, strip_zeros};

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
    files
        .iter()
        .filter_map(|path| read_file(path, problems))
        .collect()
}

/// One file: a `.sql` migration read, a Go migration refused, anything else skipped.
fn read_file(path: &Path, problems: &mut Vec<ImportProblem>) -> Option<Foreign> {
    let name = file_name(path);
    if let Some(stem) = name.strip_suffix(".go") {
        if !stem.ends_with("_test") && goose_version(stem).is_some() {
            problems.push(problem(
                path,
                None,
                "a goose Go migration: only SQL migrations can be imported; rewrite it as SQL",
            ));
        }
        return None;
    }
    let stem = name.strip_suffix(".sql")?;
    let digits = goose_version(stem)?;
    let text = read_text(path, problems)?;
    let s = sections(path, &text, problems)?;
    Some(Foreign {
        original: strip_zeros(digits),
        order: numeric_key(digits),
        name: stem[digits.len() + 1..].to_string(),
        crlf: is_crlf(&text),
        up: s.up,
        down: s.down,
        no_transaction: s.no_transaction,
        from: vec![path.to_path_buf()],
    })
}

/// The file's sections by its annotations; `None` without a `-- +goose Up`.
fn sections(path: &Path, text: &str, problems: &mut Vec<ImportProblem>) -> Option<Sections> {
    let mut s = Sections::default();
    let mut block: Option<usize> = None;
    for l in lines_of(path, text) {
        let Some(cmd) = goose_annotation(l.content()) else {
            s.push(
                l,
                "SQL before `-- +goose Up`; goose refuses it, move it below the annotation",
                problems,
            );
            continue;
        };
        annotation(&cmd, path, l.line, &mut s, &mut block, problems);
    }
    if let Some(begin) = block {
        problems.push(problem(
            path,
            Some(begin),
            "`StatementBegin` without `StatementEnd`",
        ));
    }
    if !s.seen_up {
        problems.push(problem(
            path,
            None,
            "no `-- +goose Up` annotation; goose refuses such a file",
        ));
        return None;
    }
    Some(s)
}

/// Applies the annotation `cmd` found on `line`; `block` is the line of an open
/// `StatementBegin`.
fn annotation(
    cmd: &str,
    path: &Path,
    line: usize,
    s: &mut Sections,
    block: &mut Option<usize>,
    problems: &mut Vec<ImportProblem>,
) {
    let at = Some(line);
    match cmd {
        "up" if s.seen_up => problems.push(problem(path, at, "a second `-- +goose Up`; keep one")),
        "up" => s.seen_up = true,
        "down" if !s.seen_up || s.down.is_some() => problems.push(problem(
            path,
            at,
            "`-- +goose Down` without one `-- +goose Up` before it",
        )),
        "down" => s.down = Some(Vec::new()),
        "statementbegin" if block.is_some() => problems.push(problem(
            path,
            at,
            "`StatementBegin` inside another StatementBegin block",
        )),
        "statementbegin" => *block = Some(line),
        "statementend" if block.is_none() => {
            problems.push(problem(path, at, "`StatementEnd` without `StatementBegin`"))
        }
        "statementend" => *block = None,
        "no transaction" => s.no_transaction = true,
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

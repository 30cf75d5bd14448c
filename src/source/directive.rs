//! The directive block at the top of a file: `-- @NO_TRANSACTION`, `-- @CONTRACT`,
//! `-- @STATEMENT_TIMEOUT <duration>`, `-- @LOCK_TIMEOUT <duration>`, and where the
//! `-- @REPEAT_UNTIL_ZERO` lines are.

use std::time::Duration;

use super::body::Body;
use super::split::REPEAT_UNTIL_ZERO;
use super::{
    CONTRACT, LOCK_TIMEOUT, NO_TRANSACTION, Problem, STATEMENT_TIMEOUT, UNDO_MARKER, problem,
};

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

/// Every directive word, the marker's included (for the misspelling check).
const KNOWN: [&str; 6] = [
    "NO_TRANSACTION",
    "REPEAT_UNTIL_ZERO",
    "UNDO",
    "STATEMENT_TIMEOUT",
    "LOCK_TIMEOUT",
    "CONTRACT",
];

/// What the directive lines of a file say.
#[derive(Debug, Default)]
pub(super) struct Directives {
    pub(super) no_transaction: bool,
    pub(super) contract: bool,
    pub(super) statement_timeout: Option<Duration>,
    pub(super) lock_timeout: Option<Duration>,
    /// `-- @REPEAT_UNTIL_ZERO` lines: (file line, in the undo section).
    pub(super) repeats: Vec<(usize, bool)>,
}

/// The value after `-- @WORD` on `line` when the line is `-- @WORD <value>` exactly (one
/// space or more between them); `Some("")` for a bare `-- @WORD`.
fn directive_value<'l>(line: &'l str, word: &str) -> Option<&'l str> {
    let rest = line.trim().strip_prefix("-- @")?.strip_prefix(word)?;
    if rest.is_empty() {
        Some("")
    } else if rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

/// Reads the directive lines; problems for misplaced, misspelt, unknown or malformed ones.
pub(super) fn read_directives(body: &Body<'_>, problems: &mut Vec<Problem>) -> Directives {
    let mut d = Directives::default();
    let first_sql_line = body.first_sql_line();
    for (i, line) in body.lines.iter().enumerate() {
        let lineno = i + 1;
        let Some(word) = directive_word(line) else {
            continue;
        };
        if line.trim() == UNDO_MARKER {
            continue;
        }
        let in_undo = body.marker.is_some_and(|m| i > m);
        let before_sql = !in_undo && lineno < first_sql_line;
        let at = |message: String| problem(body.path, Some(lineno), message);
        let exact = line.trim() == format!("-- @{word}");
        let valued = [STATEMENT_TIMEOUT, LOCK_TIMEOUT]
            .iter()
            .find(|k| k.strip_prefix("-- @") == Some(word))
            .and_then(|_| directive_value(line, word));
        let flag = match (word, exact) {
            ("NO_TRANSACTION", true) => Some(&mut d.no_transaction),
            ("CONTRACT", true) => Some(&mut d.contract),
            _ => None,
        };
        if let Some(flag) = flag {
            if before_sql {
                *flag = true;
            } else {
                problems.push(at(format!(
                    "`-- @{word}` after SQL has started; directives must come before any \
                     SQL, move it to the top of the file"
                )));
            }
        } else if let Some(value) = valued {
            if !before_sql {
                problems.push(at(format!(
                    "`-- @{word}` after SQL has started; directives must come before any \
                     SQL, move it to the top of the file"
                )));
                continue;
            }
            let slot = if word == "STATEMENT_TIMEOUT" {
                &mut d.statement_timeout
            } else {
                &mut d.lock_timeout
            };
            match timeout_value(word, value, *slot) {
                Ok(v) => *slot = Some(v),
                Err(message) => problems.push(at(message)),
            }
        } else if word == "REPEAT_UNTIL_ZERO" && exact {
            d.repeats.push((lineno, in_undo));
        } else if KNOWN.iter().any(|k| k.eq_ignore_ascii_case(word)) {
            problems.push(at(format!(
                "`{}` looks like a misspelt directive; write it as a line holding \
                 exactly `-- @{}`{}",
                line.trim(),
                word.to_ascii_uppercase(),
                if word.to_ascii_uppercase().ends_with("_TIMEOUT") {
                    " and a duration, e.g. `-- @LOCK_TIMEOUT 5s`"
                } else {
                    ""
                }
            )));
        } else if before_sql {
            problems.push(at(format!(
                "unknown directive `{}`; the directives are `{NO_TRANSACTION}`, \
                 `{REPEAT_UNTIL_ZERO}`, `{STATEMENT_TIMEOUT} <duration>`, \
                 `{LOCK_TIMEOUT} <duration>` and `{CONTRACT}` (and the `{UNDO_MARKER}` marker)",
                line.trim()
            )));
        }
    }
    d
}

/// The duration of a `-- @STATEMENT_TIMEOUT` / `-- @LOCK_TIMEOUT` line, or what is wrong.
fn timeout_value(word: &str, value: &str, before: Option<Duration>) -> Result<Duration, String> {
    if before.is_some() {
        return Err(format!(
            "`-- @{word}` is given twice; keep one line (the directive block sets it once)"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "`-- @{word}` needs a duration, e.g. `-- @{word} 10m` (units: ms, s, m, h)"
        ));
    }
    match crate::duration::parse_duration(value) {
        Ok(d) if d.is_zero() => Err(format!(
            "`-- @{word} {value}`: the duration must be more than zero (0 would mean no limit; \
             remove the line instead)"
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`-- @{word}`: {e}")),
    }
}

//! What `test` found for each migration, and its text and JSON forms.

use std::fmt::Write;

use crate::snapshot::Change;

/// The verdict on one migration's undo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The undo ran and restored the schema exactly.
    Ok,
    /// The file has no undo section: listed, not failed.
    Irreversible,
    /// An undo statement failed.
    UndoFailed {
        /// The statement's line in the file.
        line: usize,
        /// The server's message.
        error: String,
    },
    /// The undo ran but the schema differs from the one before the forward SQL.
    NotRestored {
        /// Each object that differs, and how.
        differences: Vec<Change>,
    },
    /// The forward SQL failed: the run stops here.
    ForwardFailed {
        /// The statement's line in the file.
        line: usize,
        /// The server's message.
        error: String,
    },
    /// Not run, because an earlier migration left the database in an unknown state.
    NotRun,
}

impl Verdict {
    /// Whether this verdict fails the run.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            Verdict::UndoFailed { .. }
                | Verdict::NotRestored { .. }
                | Verdict::ForwardFailed { .. }
        )
    }
}

/// One migration's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    /// Its version.
    pub version: i64,
    /// Its file name.
    pub file: String,
    /// Whether its undo ran in a transaction (checked there and rolled back).
    pub transactional: bool,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long the forward, undo and checks took.
    pub duration_ms: u64,
}

/// What `test` found: every migration's verdict, in order, and how long it all took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UndoReport {
    /// One entry per migration, in order.
    pub migrations: Vec<Checked>,
    /// How long the whole run took.
    pub duration_ms: u64,
}

impl UndoReport {
    /// How many undos failed or did not restore the schema (or forward SQL failed).
    pub fn failed(&self) -> usize {
        self.migrations
            .iter()
            .filter(|c| c.verdict.failed())
            .count()
    }

    /// The text form: one line per migration, the differences indented below, then a summary.
    pub fn text(&self) -> String {
        text(&self.migrations, self.duration_ms)
    }

    /// The JSON form: `{"migrations": [...], "failed": n, "irreversible": n, "duration_ms": n}`.
    pub fn json(&self) -> serde_json::Value {
        json(&self.migrations, self.duration_ms)
    }
}

fn text(checked: &[Checked], duration_ms: u64) -> String {
    let mut out = String::new();
    for c in checked {
        let what = match &c.verdict {
            Verdict::Ok => "ok".to_string(),
            Verdict::Irreversible => "irreversible (no undo section)".to_string(),
            Verdict::UndoFailed { line, error } => {
                format!("FAILED: undo failed at line {line}: {error}")
            }
            Verdict::NotRestored { .. } => "FAILED: undo does not restore the schema".to_string(),
            Verdict::ForwardFailed { line, error } => {
                format!("FAILED: forward SQL failed at line {line}: {error}")
            }
            Verdict::NotRun => "not run".to_string(),
        };
        let _ = writeln!(out, "{} {}: {what}", c.version, c.file);
        if let Verdict::NotRestored { differences } = &c.verdict {
            for d in differences {
                let _ = writeln!(out, "    {d}");
            }
        }
    }
    let failed = checked.iter().filter(|c| c.verdict.failed()).count();
    let irreversible = checked
        .iter()
        .filter(|c| c.verdict == Verdict::Irreversible)
        .count();
    let _ = writeln!(
        out,
        "{} migration(s) checked in {duration_ms} ms: {failed} failed, {irreversible} irreversible",
        checked.len()
    );
    out
}

fn json(checked: &[Checked], duration_ms: u64) -> serde_json::Value {
    serde_json::json!({
        "migrations": checked,
        "failed": checked.iter().filter(|c| c.verdict.failed()).count(),
        "irreversible": checked.iter().filter(|c| c.verdict == Verdict::Irreversible).count(),
        "duration_ms": duration_ms,
    })
}

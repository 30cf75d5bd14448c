//! Offline checks for `verify`: irreversible and empty migrations, what CockroachDB cannot run
//! atomically inside one transaction, and what breaks pods still running the previous release.
//!
//! The analysis is a heuristic reading of keywords and names in each statement (as split at
//! load, [`Migration::up_statements`]; strings and comments are skipped, keywords are
//! case-insensitive, names are compared without schema qualification). It can miss things and
//! it can be fooled; it only ever warns. Each warning has a [`Severity`]: `risk` (the migration
//! can fail, at COMMIT or before, leave a partial state, or break running pods) or `note`
//! (worth knowing, merely non-atomic). Rules, by name:
//! - `irreversible` (note): the file has no `-- @UNDO` section.
//! - `empty_undo` (note): the `-- @UNDO` section has no statement.
//! - `empty_forward` (note): the forward section has no statement (a down-only migration, or a
//!   placeholder when the undo is empty too).
//! - For transactional files only (CockroachDB runs the schema changes of an explicit
//!   transaction on existing tables as one job per table after the commit), see `atomic.rs`:
//!   `multiple_schema_changes` (risk when one of them is validated against the data: a unique
//!   index, a constraint, `SET NOT NULL`, a type change; note when several tables change;
//!   quiet for one table's unvalidated changes, or when every one is a
//!   `CREATE INDEX IF NOT EXISTS`),
//!   `schema_change_after_write`, `add_column_then_use` (a later statement other than
//!   `COMMENT ON` naming the table and the new column), `alter_column_type` (unless it only
//!   widens: `VARCHAR(32)` to `VARCHAR(39)` or `TEXT`, `INT4` to `INT8`),
//!   `drop_column_with_other_ddl`.
//! - For every forward section not marked `-- @CONTRACT`, the compatibility rules of
//!   `compat.rs` (risk): `breaking_drop_table`, `breaking_drop_column`,
//!   `breaking_rename_table`, `breaking_rename_column`, `breaking_alter_column_type`,
//!   `breaking_add_not_null_column`, `breaking_set_not_null`, `breaking_new_constraint`,
//!   `breaking_drop_default`.
//!
//! The forward and the undo section are checked separately; statement indexes are 1-based
//! within their section, undo statements are called "undo statement N" in messages, and
//! [`Warning::line`] is the statement's line in the file.
//!
//! [`lint_all`] reads a whole set in version order and remembers the column types the files
//! create, so a type change can be told widening or not; `lint` sees one file alone. Both
//! are linear in the number of statements.

mod atomic;
mod compat;
mod facts;
mod lex;
mod types;

use std::collections::HashMap;

use crate::source::Migration;
use crate::source::split::Statement;
use facts::{Clause, StatementFacts, analyse};
use lex::{Tok, lex};
use types::Ty;

/// How bad a warning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Can fail (at COMMIT or before), leave a partial state, or break pods still running the
    /// previous release. `verify --strict` refuses these.
    Risk,
    /// Worth knowing: merely non-atomic, irreversible, or empty.
    Note,
}

/// A warning about one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The migration's version.
    pub version: i64,
    /// The rule that fired, e.g. `irreversible`, `multiple_schema_changes`.
    pub rule: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// The 1-based index of the statement at fault (within its section), when one is.
    pub statement: Option<usize>,
    /// The 1-based line of that statement in the file, when there is one.
    pub line: Option<usize>,
    /// What is wrong, naming the file and statement, and the fix.
    pub message: String,
}

impl Warning {
    /// Is it a [`Severity::Risk`]? (`verify --strict` exits 20 on any.)
    pub fn is_risk(&self) -> bool {
        self.severity == Severity::Risk
    }
}

/// Is any of `warnings` a [`Severity::Risk`]?
#[cfg(test)]
pub(crate) fn has_risk(warnings: &[Warning]) -> bool {
    warnings.iter().any(Warning::is_risk)
}

/// The fix suggested for the transactional rules.
pub const FIX: &str = "split it into separate migration files, or mark the file \
     `-- @NO_TRANSACTION` with idempotent statements (IF NOT EXISTS / IF EXISTS)";

/// The column types the files seen so far create: table, then column.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    tables: HashMap<String, HashMap<String, Ty>>,
}

impl Schema {
    /// The type of `table.column`, when a file seen so far gave it.
    fn column(&self, table: &str, column: &str) -> Option<&Ty> {
        self.tables.get(table)?.get(column)
    }

    /// Remembers what a forward section's statements create or change.
    fn learn(&mut self, facts: &[StatementFacts]) {
        for f in facts {
            if let Some((table, columns)) = &f.table_columns {
                let cols = self.tables.entry(table.clone()).or_default();
                cols.clear();
                cols.extend(
                    columns
                        .iter()
                        .filter_map(|(c, t)| Some((c.clone(), t.clone()?))),
                );
            }
            for t in &f.drops_tables {
                self.tables.remove(t);
            }
            let Some(table) = f.table() else { continue };
            for clause in f.clauses() {
                let cols = self.tables.entry(table.to_string()).or_default();
                match clause {
                    Clause::AddColumn { column, ty, .. } | Clause::AlterType { column, ty, .. } => {
                        match ty {
                            Some(ty) => cols.insert(column.clone(), ty.clone()),
                            None => cols.remove(column),
                        };
                    }
                    Clause::DropColumn { column } => {
                        cols.remove(column);
                    }
                    Clause::RenameColumn { from, to } => {
                        if let Some(ty) = cols.remove(from) {
                            cols.insert(to.clone(), ty);
                        }
                    }
                    Clause::RenameTable { to } => {
                        if let Some(cols) = self.tables.remove(table) {
                            self.tables.insert(to.clone(), cols);
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// One section (forward or undo) of a migration, read once for every rule.
pub(crate) struct Section<'a> {
    m: &'a Migration,
    undo: bool,
    statements: &'a [Statement],
    toks: Vec<Vec<Tok>>,
    facts: Vec<StatementFacts>,
    /// Statement `k` changes an object that existed before the file.
    existing_change: Vec<bool>,
    /// The index of the first statement creating each name.
    created_at: HashMap<String, usize>,
}

impl<'a> Section<'a> {
    fn new(m: &'a Migration, undo: bool, statements: &'a [Statement]) -> Self {
        let toks: Vec<Vec<Tok>> = statements.iter().map(|s| lex(&s.text)).collect();
        let facts: Vec<StatementFacts> = toks.iter().map(|t| analyse(t)).collect();
        let mut created_at: HashMap<String, usize> = HashMap::new();
        let mut existing_change = vec![false; facts.len()];
        for (k, f) in facts.iter().enumerate() {
            existing_change[k] = f
                .changes
                .iter()
                .any(|names| !names.iter().any(|n| created_at.contains_key(n)));
            for name in &f.creates {
                created_at.entry(name.clone()).or_insert(k);
            }
        }
        Section {
            m,
            undo,
            statements,
            toks,
            facts,
            existing_change,
            created_at,
        }
    }

    /// Did `name` exist before statement `k` (not created earlier in this section)?
    fn existed(&self, name: &str, k: usize) -> bool {
        self.created_at.get(name).is_none_or(|&j| j >= k)
    }

    /// `path: statement N (`excerpt`)` for the 0-based statement `k`.
    fn label(&self, k: usize) -> String {
        let section = if self.undo {
            "undo statement"
        } else {
            "statement"
        };
        format!(
            "{}: {section} {} (`{}`)",
            self.m.path.display(),
            k + 1,
            excerpt(&self.statements[k].text)
        )
    }

    /// A warning about the 0-based statement `k`; `message` follows the label.
    fn warning(
        &self,
        rule: &'static str,
        severity: Severity,
        k: usize,
        message: String,
    ) -> Warning {
        Warning {
            version: self.m.version,
            rule,
            severity,
            statement: Some(k + 1),
            line: Some(self.statements[k].line),
            message: format!("{}: {message}", self.label(k)),
        }
    }
}

/// The first ~60 characters of a statement, whitespace collapsed.
fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(60).collect();
    if out.len() < flat.len() {
        out.push_str("...");
    }
    out
}

/// A warning about the whole file.
fn file_warning(m: &Migration, rule: &'static str, message: String) -> Warning {
    Warning {
        version: m.version,
        rule,
        severity: Severity::Note,
        statement: None,
        line: None,
        message: format!("{}: {message}", m.path.display()),
    }
}

/// The warnings about the file as a whole: irreversible, empty sections.
fn file_warnings(m: &Migration, out: &mut Vec<Warning>) {
    let undo_empty = m.down_statements.as_ref().is_some_and(Vec::is_empty);
    if m.up_statements.is_empty() {
        let what = if undo_empty || m.down.is_none() {
            "has no statement in either section: a placeholder, applied and rolled back \
             without running anything; fine if it only reserves a version, otherwise write the SQL"
        } else {
            "has no forward statement: a down-only migration, applied without running \
             anything (its undo runs on rollback); fine if that is what you mean, otherwise \
             write the forward SQL before `-- @UNDO`"
        };
        out.push(file_warning(m, "empty_forward", what.to_string()));
        return;
    }
    if m.down.is_none() {
        out.push(file_warning(
            m,
            "irreversible",
            format!(
                "has no `-- @UNDO` section, so a rollback through version {} will be \
                 refused; to make it reversible add a line `-- @UNDO` followed by the undo SQL",
                m.version
            ),
        ));
    }
    if undo_empty {
        out.push(file_warning(
            m,
            "empty_undo",
            "its `-- @UNDO` section has no statements, so a rollback removes its row \
             without undoing anything; write the undo SQL, or remove the `-- @UNDO` line to \
             make the migration irreversible"
                .to_string(),
        ));
    }
}

/// Lints one migration with what `schema` knows of the files before it; then teaches
/// `schema` what this one's forward section does.
fn lint_in(m: &Migration, schema: &mut Schema) -> Vec<Warning> {
    let mut out = Vec::new();
    file_warnings(m, &mut out);
    let up = Section::new(m, false, &m.up_statements);
    let down = m
        .down_statements
        .as_deref()
        .map(|d| Section::new(m, true, d));
    if !m.no_transaction {
        atomic::check(&up, schema, &mut out);
        if let Some(down) = &down {
            atomic::check(down, schema, &mut out);
        }
    }
    if !m.contract {
        compat::check(&up, schema, &mut out);
    }
    schema.learn(&up.facts);
    out
}

/// Lints one migration on its own (a type change's old type is known only when the same
/// file creates the column; use [`lint_all`] for a whole set).
#[cfg(test)]
pub fn lint(m: &Migration) -> Vec<Warning> {
    lint_in(m, &mut Schema::default())
}

/// Lints a set in version order (as the loader returns it), remembering the
/// column types earlier files create, so that widening type changes stay quiet. Linear in
/// the number of statements.
pub fn lint_all(set: &[Migration]) -> Vec<Warning> {
    let mut schema = Schema::default();
    set.iter().flat_map(|m| lint_in(m, &mut schema)).collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod compat_tests;

#[cfg(test)]
mod corpus_tests;

//! The transactional rules: what goes wrong when schema changes on existing tables share one
//! explicit transaction on CockroachDB. What holds on every supported version (v24.3, v25.2,
//! v25.4, v26.1): the declarative schema changer takes only single-statement implicit
//! transactions in its default mode (`planner.SchemaChange`, `pkg/sql/schema_change_plan_node.go`:
//! "When new schema changer is on we will not support it for explicit transaction"), so the DDL
//! of a migration's transaction goes to the legacy schema changer. That one queues each table's
//! changes as mutations sharing one mutation ID and runs them as one job per table after
//! COMMIT, inside COMMIT's wait: a table's changes take effect together, or are reverted
//! together when one of them fails validation against the existing rows, and then COMMIT fails
//! with XXA00 after the transaction's other writes (the ledger row included) committed — the
//! migration is marked dirty. Different tables are different jobs: one can fail after another
//! succeeded. Rules:
//! - `multiple_schema_changes`: quiet for several changes to one table that nothing validates
//!   (two `ADD COLUMN`s: one job, nothing that can fail on the data); a note for changes to
//!   several tables (they take effect one table at a time); a risk when one is validated.
//! - `schema_change_after_write`, `add_column_then_use`, `alter_column_type`,
//!   `drop_column_with_other_ddl`: risks, each saying why.

use std::collections::HashSet;

use super::facts::{Clause, Constraint, StatementFacts as Facts};
use super::lex::Tok;
use super::types::widens;
use super::{FIX, Schema, Section, Severity, Warning};

/// Is statement `f` a schema change validated against existing data (so it can fail at
/// COMMIT, after the other changes of the transaction went through)?
fn validated(f: &Facts, schema: &Schema) -> bool {
    if f.index.as_ref().is_some_and(|i| i.unique) {
        return true;
    }
    f.clauses().iter().any(|c| match c {
        Clause::AddConstraint { kind, not_valid } => {
            !not_valid || matches!(kind, Constraint::Unique | Constraint::PrimaryKey)
        }
        Clause::SetNotNull { .. } => true,
        Clause::AddColumn {
            not_null, default, ..
        } => *not_null && !*default,
        Clause::AlterType { .. } => type_change(f, schema, c).is_some(),
        _ => false,
    })
}

/// For an `AlterType` clause that does more than widen: the column.
pub(super) fn type_change<'c>(f: &Facts, schema: &Schema, clause: &'c Clause) -> Option<&'c str> {
    let Clause::AlterType { column, ty, using } = clause else {
        return None;
    };
    let table = f.table()?;
    let old = schema.column(table, column);
    let widening = !using && ty.as_ref().is_some_and(|ty| widens(old, ty));
    (!widening).then_some(column.as_str())
}

/// How the rules report: rule, severity, 0-based statement, what (before the fix).
type Warn<'w> = dyn FnMut(&'static str, Severity, usize, String) + 'w;

/// Runs the transactional rules over one section.
pub(super) fn check(s: &Section<'_>, schema: &Schema, out: &mut Vec<Warning>) {
    let changes: Vec<usize> = (0..s.facts.len())
        .filter(|&k| s.existing_change[k])
        .collect();
    let mut warn = |rule: &'static str, severity: Severity, k: usize, what: String| {
        out.push(s.warning(rule, severity, k, format!("{what}: {FIX}")));
    };
    multiple_schema_changes(s, schema, &changes, &mut warn);
    schema_change_after_write(s, &changes, &mut warn);
    add_column_then_use(s, &mut warn);
    alter_column_type(s, schema, &mut warn);
    drop_column_with_other_ddl(s, &changes, &mut warn);
}

/// The table statement `f` changes, when lint can tell: the altered table, the indexed one,
/// else the first name it changes.
fn changed_table(f: &Facts) -> Option<&str> {
    f.table()
        .or_else(|| f.index.as_ref().and_then(|i| i.table.as_deref()))
        .or_else(|| {
            f.changes
                .first()
                .and_then(|names| names.first())
                .map(String::as_str)
        })
}

/// What happens after COMMIT when a validated change fails.
const REVERTED: &str = "CockroachDB validates it after COMMIT, and if that fails it reverts \
     the table's schema changes while the transaction's other writes stay committed (COMMIT \
     fails with XXA00 and the migration is marked dirty)";

/// More than one schema change on existing objects.
fn multiple_schema_changes(
    s: &Section<'_>,
    schema: &Schema,
    changes: &[usize],
    warn: &mut Warn<'_>,
) {
    let facts = &s.facts;
    // Plain `CREATE INDEX IF NOT EXISTS` builds and `DROP INDEX IF EXISTS` are idempotent
    // and validate nothing: a file of only those is fine.
    let idempotent_index = |k: &usize| {
        let f = &facts[*k];
        f.drops_index_if_exists
            || f.index
                .as_ref()
                .is_some_and(|i| !i.unique && i.if_not_exists)
    };
    let [first, second, ..] = changes[..] else {
        return;
    };
    if changes.iter().all(idempotent_index) {
        return;
    }
    let validated_at = changes.iter().find(|&&k| validated(&facts[k], schema));
    let tables: HashSet<Option<&str>> = changes.iter().map(|&k| changed_table(&facts[k])).collect();
    let one_table = tables.len() == 1 && !tables.contains(&None);
    // One table, nothing validated: one job that nothing in the data can fail.
    if one_table && validated_at.is_none() {
        return;
    }
    let list: Vec<String> = changes.iter().map(|k| (k + 1).to_string()).collect();
    let head = format!(
        "{} schema changes on existing objects in one transaction (statements {}, the first is \
         statement {})",
        changes.len(),
        list.join(", "),
        first + 1
    );
    let (severity, what) = match validated_at {
        Some(&k) => (
            Severity::Risk,
            format!(
                "{head}; statement {} is validated against the existing rows: {REVERTED}{}",
                k + 1,
                if one_table {
                    ""
                } else {
                    ", and the changes to the other tables, separate jobs, may already have \
                     taken effect"
                }
            ),
        ),
        None => (
            Severity::Note,
            format!(
                "{head}; on CockroachDB they run after COMMIT as one job per table, so each \
                 table's changes take effect on their own"
            ),
        ),
    };
    warn("multiple_schema_changes", severity, second, what);
}

/// A schema change on an existing object after a statement wrote rows.
fn schema_change_after_write(s: &Section<'_>, changes: &[usize], warn: &mut Warn<'_>) {
    if let Some(w) = s.facts.iter().position(|f| f.writes)
        && let Some(&k) = changes.iter().find(|&&k| k > w)
    {
        warn(
            "schema_change_after_write",
            Severity::Risk,
            k,
            format!(
                "a schema change on an existing object after statement {} wrote rows in the \
                 same transaction; CockroachDB runs the schema change after COMMIT, so if it \
                 fails the rows written stay committed (XXA00, the migration is marked dirty)",
                w + 1
            ),
        );
    }
}

/// A type change on an existing table that does more than widen.
fn alter_column_type(s: &Section<'_>, schema: &Schema, warn: &mut Warn<'_>) {
    for (k, f) in s.facts.iter().enumerate() {
        if !s.existing_change[k] {
            continue;
        }
        for clause in f.clauses() {
            if let Some(col) = type_change(f, schema, clause) {
                warn(
                    "alter_column_type",
                    Severity::Risk,
                    k,
                    format!(
                        "changes the type of column `{col}` beyond widening it, which \
                         CockroachDB does not support inside an explicit transaction"
                    ),
                );
            }
        }
    }
}

/// `DROP COLUMN` with other statements' schema changes on existing objects.
fn drop_column_with_other_ddl(s: &Section<'_>, changes: &[usize], warn: &mut Warn<'_>) {
    for (k, f) in s.facts.iter().enumerate() {
        let drops = f
            .clauses()
            .iter()
            .any(|c| matches!(c, Clause::DropColumn { .. }));
        if !(s.existing_change[k] && drops) {
            continue;
        }
        // Clauses of one ALTER TABLE are CockroachDB's documented atomic way; other
        // statements' schema changes are not.
        let others: Vec<String> = changes
            .iter()
            .filter(|&&j| j != k)
            .map(|j| (j + 1).to_string())
            .collect();
        if others.is_empty() {
            continue;
        }
        warn(
            "drop_column_with_other_ddl",
            Severity::Risk,
            k,
            format!(
                "drops a column together with the schema changes of statements {}; if one of \
                 them fails after COMMIT, CockroachDB's rollback of a column drop can lose the \
                 column's data (its documented limitation: drop columns in a transaction of \
                 their own)",
                others.join(", ")
            ),
        );
    }
}

/// `ALTER TABLE t ADD COLUMN c`, then a later statement (not a `COMMENT ON`) naming `t` and `c`.
fn add_column_then_use(s: &Section<'_>, warn: &mut Warn<'_>) {
    // The names of each statement, once.
    let mut names: Vec<Option<HashSet<&str>>> = vec![None; s.toks.len()];
    for (k, f) in s.facts.iter().enumerate() {
        if !s.existing_change[k] {
            continue;
        }
        let Some(table) = f.table() else { continue };
        for clause in f.clauses() {
            let Clause::AddColumn { column, .. } = clause else {
                continue;
            };
            let used = (k + 1..s.toks.len()).find(|&j| {
                if s.facts[j].comment {
                    return false;
                }
                let set = names[j]
                    .get_or_insert_with(|| s.toks[j].iter().filter_map(Tok::name).collect());
                set.contains(table) && set.contains(column.as_str())
            });
            if let Some(j) = used {
                warn(
                    "add_column_then_use",
                    Severity::Risk,
                    j,
                    format!(
                        "uses column `{column}` of `{table}`, added by statement {} in the same \
                         transaction: CockroachDB adds the column only after COMMIT, so this \
                         statement fails",
                        k + 1
                    ),
                );
            }
        }
    }
}

//! The transactional rules: what CockroachDB cannot run atomically inside one transaction
//! (it runs schema changes on existing tables as background jobs after the commit).

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
        out.push(s.warning(
            rule,
            severity,
            k,
            format!("{what}; CockroachDB cannot run this atomically in one transaction: {FIX}"),
        ));
    };
    multiple_schema_changes(s, schema, &changes, &mut warn);
    schema_change_after_write(s, &changes, &mut warn);
    add_column_then_use(s, &mut warn);
    alter_column_type(s, schema, &mut warn);
    drop_column_with_other_ddl(s, &changes, &mut warn);
}

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
    let list: Vec<String> = changes.iter().map(|k| (k + 1).to_string()).collect();
    let risky = changes.iter().any(|&k| validated(&facts[k], schema));
    warn(
        "multiple_schema_changes",
        if risky {
            Severity::Risk
        } else {
            Severity::Note
        },
        second,
        format!(
            "{} schema changes on existing objects in one transaction (statements {}, the \
             first is statement {}){}",
            changes.len(),
            list.join(", "),
            first + 1,
            if risky {
                "; one of them is validated against the existing rows and can fail after \
                 the others took effect"
            } else {
                ""
            }
        ),
    );
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
                 same transaction",
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
                 them fails after the commit the dropped column's data can be lost",
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
                         transaction, before the new column is visible",
                        k + 1
                    ),
                );
            }
        }
    }
}

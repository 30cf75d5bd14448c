//! The compatibility rules: what breaks pods still running the previous release against the
//! new schema (canary, blue-green, any rolling update). Each names the expand/contract way to
//! make the same change; `-- @CONTRACT` on a file acknowledges a deliberate break and silences
//! them for it.

use std::collections::HashSet;

use super::atomic::type_change;
use super::facts::{Clause, Constraint};
use super::{Schema, Section, Severity, Warning};

/// The tail of every compatibility warning.
const ACK: &str = "or, when the break is deliberate and no pod of the previous release runs \
     any more (a post-rollout job), mark the file `-- @CONTRACT`";

/// Runs the compatibility rules over a forward section.
pub(super) fn check(s: &Section<'_>, schema: &Schema, out: &mut Vec<Warning>) {
    let mut warn = |rule: &'static str, k: usize, what: String, fix: &str| {
        out.push(s.warning(
            rule,
            Severity::Risk,
            k,
            format!(
                "{what}, which breaks pods still running the previous release against the new \
                 schema; expand/contract: {fix}; {ACK}"
            ),
        ));
    };
    // Columns added earlier in this file: dropping or constraining them breaks nobody.
    let mut added: HashSet<(&str, &str)> = HashSet::new();
    for (k, f) in s.facts.iter().enumerate() {
        for t in f.drops_tables.iter().filter(|t| s.existed(t, k)) {
            warn(
                "breaking_drop_table",
                k,
                format!("drops table `{t}`"),
                "release code that no longer reads or writes the table first, then drop it \
                 in a later migration",
            );
        }
        if let Some(index) = &f.index
            && index.unique
            && let Some(table) = index.table.as_deref().filter(|t| s.existed(t, k))
        {
            warn(
                "breaking_new_constraint",
                k,
                format!("adds a unique index on existing table `{table}`"),
                "release code that never writes duplicates first, then build the unique index \
                 in a later migration",
            );
        }
        let Some(table) = f.table().filter(|t| s.existed(t, k)) else {
            continue;
        };
        for clause in f.clauses() {
            if let Clause::AddColumn { column, .. } = clause {
                added.insert((table, column.as_str()));
            }
            if let Some((rule, what, fix)) = clause_break(table, clause, &added, f, schema) {
                warn(rule, k, what, fix);
            }
        }
    }
}

/// The compatibility rule `clause` of `ALTER TABLE table` breaks, if any: rule, what, fix.
fn clause_break(
    table: &str,
    clause: &Clause,
    added: &HashSet<(&str, &str)>,
    f: &super::facts::StatementFacts,
    schema: &Schema,
) -> Option<(&'static str, String, &'static str)> {
    let new = |c: &str| added.contains(&(table, c));
    Some(match clause {
        Clause::DropColumn { column } if !new(column) => (
            "breaking_drop_column",
            format!("drops column `{column}` of `{table}`"),
            "release code that no longer reads or writes the column first, then drop it in a \
             later migration",
        ),
        Clause::RenameTable { to } => (
            "breaking_rename_table",
            format!("renames table `{table}` to `{to}`"),
            "create the new table (or a view) beside the old one, release code that uses the \
             new name, then drop the old name in a later migration",
        ),
        Clause::RenameColumn { from, to } => (
            "breaking_rename_column",
            format!("renames column `{from}` of `{table}` to `{to}`"),
            "add the new column, release code that writes both and reads the new one, \
             backfill it, then drop the old column in a later migration",
        ),
        Clause::AlterType { .. } => {
            let column = type_change(f, schema, clause)?;
            (
                "breaking_alter_column_type",
                format!("changes the type of column `{column}` of `{table}` beyond widening it"),
                "add a column of the new type, release code that writes both, backfill it, \
                 switch reads, then drop the old column in a later migration",
            )
        }
        Clause::AddColumn {
            column,
            not_null: true,
            default: false,
            ..
        } => (
            "breaking_add_not_null_column",
            format!("adds column `{column}` to `{table}` as NOT NULL without a DEFAULT"),
            "give the column a DEFAULT, or add it nullable, release code that always writes \
             it, then SET NOT NULL in a later migration",
        ),
        Clause::SetNotNull { column } if !new(column) => (
            "breaking_set_not_null",
            format!("makes column `{column}` of `{table}` NOT NULL"),
            "release code that always writes the column first, then SET NOT NULL in a later \
             migration",
        ),
        Clause::AddConstraint {
            kind: kind @ (Constraint::Unique | Constraint::Check | Constraint::ForeignKey),
            ..
        } => (
            "breaking_new_constraint",
            format!(
                "adds a {} constraint to existing table `{table}`",
                match kind {
                    Constraint::Unique => "UNIQUE",
                    Constraint::Check => "CHECK",
                    _ => "FOREIGN KEY",
                }
            ),
            "release code that only writes rows the constraint accepts first, then add it in \
             a later migration (CHECK and FOREIGN KEY: `NOT VALID` there, and `VALIDATE \
             CONSTRAINT` after cleaning the old rows)",
        ),
        Clause::DropDefault { column } if !new(column) => (
            "breaking_drop_default",
            format!("drops the default of column `{column}` of `{table}`"),
            "release code that writes the column explicitly first, then drop the default in a \
             later migration",
        ),
        _ => return None,
    })
}

//! What one statement does, as far as the rules care: the objects it creates, changes and
//! drops, the clauses of an `ALTER TABLE`, whether it writes rows.

use super::lex::{Cur, Tok, split_commas};
use super::types::{Ty, parse_type};

/// Object kinds whose CREATE/ALTER/DROP is a schema change.
const OBJECTS: [&str; 8] = [
    "TABLE",
    "INDEX",
    "VIEW",
    "MATERIALIZED",
    "SEQUENCE",
    "TYPE",
    "SCHEMA",
    "DATABASE",
];

/// Statements that write rows.
const WRITES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "UPSERT"];

/// A table constraint's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Constraint {
    Unique,
    Check,
    ForeignKey,
    PrimaryKey,
    Other,
}

/// One clause of an `ALTER TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Clause {
    /// `ADD [COLUMN] [IF NOT EXISTS] c TYPE ...`.
    AddColumn {
        column: String,
        ty: Option<Ty>,
        not_null: bool,
        default: bool,
    },
    /// `DROP [COLUMN] [IF EXISTS] c`.
    DropColumn { column: String },
    /// `ALTER [COLUMN] c [SET DATA] TYPE t [USING ...]`.
    AlterType {
        column: String,
        ty: Option<Ty>,
        using: bool,
    },
    /// `ALTER [COLUMN] c SET NOT NULL`.
    SetNotNull { column: String },
    /// `ALTER [COLUMN] c DROP DEFAULT`.
    DropDefault { column: String },
    /// `ADD [CONSTRAINT n] UNIQUE | CHECK | FOREIGN KEY | PRIMARY KEY ... [NOT VALID]`.
    AddConstraint { kind: Constraint, not_valid: bool },
    /// `RENAME [COLUMN] a TO b`.
    RenameColumn { from: String, to: String },
    /// `RENAME TO b`.
    RenameTable { to: String },
    /// Anything else.
    Other,
}

/// Columns of a `CREATE TABLE`: name and type (when lint can read it).
pub(super) type Columns = Vec<(String, Option<Ty>)>;

/// A `CREATE [UNIQUE] INDEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) unique: bool,
    pub(super) if_not_exists: bool,
    pub(super) table: Option<String>,
}

/// What a statement does.
#[derive(Debug, Default)]
pub(super) struct StatementFacts {
    /// Objects it creates (tables, indexes, views, ...).
    pub(super) creates: Vec<String>,
    /// `CREATE TABLE`: the table and its columns' types, for the set's schema model.
    pub(super) table_columns: Option<(String, Columns)>,
    /// Objects it changes; empty when it changes none. For an index the table comes first
    /// when known. The statement is a schema change on an existing object when any of them
    /// was not created earlier.
    pub(super) changes: Vec<Vec<String>>,
    /// `ALTER TABLE t ...`: `t` and the clauses.
    pub(super) altered: Option<(String, Vec<Clause>)>,
    /// `DROP TABLE`: the tables.
    pub(super) drops_tables: Vec<String>,
    /// `CREATE INDEX`.
    pub(super) index: Option<Index>,
    /// A `DROP INDEX IF EXISTS`.
    pub(super) drops_index_if_exists: bool,
    /// A `COMMENT ON ...`: metadata only.
    pub(super) comment: bool,
    /// It writes rows.
    pub(super) writes: bool,
}

impl StatementFacts {
    /// The clauses of an `ALTER TABLE` (none for other statements).
    pub(super) fn clauses(&self) -> &[Clause] {
        self.altered.as_ref().map_or(&[], |(_, c)| c.as_slice())
    }
    /// The altered table, for an `ALTER TABLE`.
    pub(super) fn table(&self) -> Option<&str> {
        self.altered.as_ref().map(|(t, _)| t.as_str())
    }
}

/// Reads what the statement `toks` does.
pub(super) fn analyse(toks: &[Tok]) -> StatementFacts {
    let mut f = StatementFacts::default();
    let mut c = Cur::new(toks);
    if c.eat(&["CREATE"]) {
        create(&mut c, &mut f);
    } else if c.eat(&["ALTER"]) {
        alter(&mut c, &mut f);
    } else if c.eat(&["DROP"]) {
        drop(&mut c, &mut f);
    } else if c.eat(&["TRUNCATE"]) {
        c.skip_any(&["TABLE", "ONLY"]);
        while let Some((name, _)) = c.name() {
            f.changes.push(vec![name]);
            if !c.peek().is_some_and(|t| t.is_punct(',')) {
                break;
            }
            c.i += 1;
        }
    } else if c.eat(&["COMMENT", "ON"]) {
        f.comment = true;
    } else if c.peek().is_some_and(|t| t.is_any(&WRITES)) {
        f.writes = true;
    } else if c.eat(&["WITH"]) {
        f.writes = toks.iter().any(|t| t.is_any(&WRITES));
    }
    f
}

fn create(c: &mut Cur<'_>, f: &mut StatementFacts) {
    let mut unique = false;
    while let Some(t) = c.peek().filter(|t| {
        t.is_any(&[
            "OR",
            "REPLACE",
            "TEMP",
            "TEMPORARY",
            "UNLOGGED",
            "GLOBAL",
            "LOCAL",
            "UNIQUE",
            "INVERTED",
            "VECTOR",
            "MATERIALIZED",
        ])
    }) {
        unique |= t.is_kw("UNIQUE");
        c.i += 1;
    }
    if c.eat(&["INDEX"]) {
        c.skip_any(&["CONCURRENTLY"]);
        let if_not_exists = c.eat(&["IF", "NOT", "EXISTS"]);
        let index = if c.peek().is_some_and(|t| t.is_kw("ON")) {
            None
        } else {
            c.name().map(|(n, _)| n)
        };
        let mut table = None;
        if c.eat(&["ON"]) {
            c.skip_any(&["ONLY"]);
            if let Some((t, _)) = c.name() {
                f.changes.push(vec![t.clone()]);
                table = Some(t);
            }
        }
        f.creates.extend(index);
        f.index = Some(Index {
            unique,
            if_not_exists,
            table,
        });
    } else if c.peek().is_some_and(|t| t.is_any(&OBJECTS)) {
        let is_table = c.peek().is_some_and(|t| t.is_kw("TABLE"));
        c.i += 1;
        c.eat(&["IF", "NOT", "EXISTS"]);
        if let Some((name, _)) = c.name() {
            f.creates.push(name.clone());
            if is_table && c.peek().is_some_and(|t| t.is_punct('(')) {
                f.table_columns = Some((name, column_types(c.rest())));
            }
        }
    }
}

/// The columns of a `CREATE TABLE`'s parenthesised element list (starting at its `(`).
fn column_types(toks: &[Tok]) -> Columns {
    let mut depth = 0usize;
    let mut end = toks.len();
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth -= 1;
            if depth == 0 {
                end = k;
                break;
            }
        }
    }
    let inner = toks.get(1..end).unwrap_or_default();
    split_commas(inner)
        .into_iter()
        .filter(|el| {
            !el.first().is_some_and(|t| {
                t.is_any(&[
                    "CONSTRAINT",
                    "PRIMARY",
                    "UNIQUE",
                    "CHECK",
                    "FOREIGN",
                    "INDEX",
                    "INVERTED",
                    "FAMILY",
                    "LIKE",
                    "EXCLUDE",
                ])
            })
        })
        .filter_map(|el| {
            let name = el.first()?.name()?.to_string();
            Some((name, parse_type(&el[1..])))
        })
        .collect()
}

fn alter(c: &mut Cur<'_>, f: &mut StatementFacts) {
    let Some(kind) = c.peek().filter(|t| t.is_any(&OBJECTS)) else {
        return;
    };
    let is_table = kind.is_kw("TABLE");
    c.i += 1;
    c.skip_any(&["VIEW"]);
    c.eat(&["IF", "EXISTS"]);
    c.skip_any(&["ONLY"]);
    let Some((name, table)) = c.name() else {
        return;
    };
    f.changes
        .push(table.into_iter().chain([name.clone()]).collect());
    let clauses = split_commas(c.rest());
    if is_table {
        f.altered = Some((name, clauses.into_iter().map(clause).collect()));
    } else {
        f.altered = None;
    }
}

/// After `ALTER`: `[COLUMN] c [SET DATA] TYPE t | SET NOT NULL | DROP DEFAULT | ...`.
fn alter_column(c: &mut Cur<'_>) -> Clause {
    c.eat(&["COLUMN"]);
    let Some(column) = c.word() else {
        return Clause::Other;
    };
    c.eat(&["SET", "DATA"]);
    if c.eat(&["TYPE"]) {
        let rest = c.rest();
        return Clause::AlterType {
            column,
            ty: parse_type(rest),
            using: rest.iter().any(|t| t.is_kw("USING")),
        };
    }
    if c.eat(&["SET", "NOT", "NULL"]) {
        return Clause::SetNotNull { column };
    }
    if c.eat(&["DROP", "DEFAULT"]) {
        return Clause::DropDefault { column };
    }
    Clause::Other
}

/// After `RENAME`: `TO t | [COLUMN] a TO b | CONSTRAINT ...`.
fn rename(c: &mut Cur<'_>) -> Clause {
    if c.eat(&["TO"]) {
        return c
            .word()
            .map_or(Clause::Other, |to| Clause::RenameTable { to });
    }
    if c.peek().is_some_and(|t| t.is_any(&["CONSTRAINT", "INDEX"])) {
        return Clause::Other;
    }
    c.eat(&["COLUMN"]);
    let from = c.word();
    c.eat(&["TO"]);
    match (from, c.word()) {
        (Some(from), Some(to)) => Clause::RenameColumn { from, to },
        _ => Clause::Other,
    }
}

/// Reads one clause of an `ALTER TABLE`.
fn clause(toks: &[Tok]) -> Clause {
    let mut c = Cur::new(toks);
    if c.eat(&["ALTER"]) {
        return alter_column(&mut c);
    }
    if c.eat(&["RENAME"]) {
        return rename(&mut c);
    }
    let add = c.eat(&["ADD"]);
    if !add && !c.eat(&["DROP"]) {
        return Clause::Other;
    }
    if add && let Some(kind) = constraint_kind(&mut c) {
        let not_valid = toks
            .windows(2)
            .any(|w| w[0].is_kw("NOT") && w[1].is_kw("VALID"));
        return Clause::AddConstraint { kind, not_valid };
    }
    let not_column = [
        "CONSTRAINT",
        "PRIMARY",
        "UNIQUE",
        "FOREIGN",
        "CHECK",
        "INDEX",
    ];
    if c.peek()
        .is_some_and(|t| t.is_any(&not_column) || t.is_kw("EXCLUDE"))
    {
        return Clause::Other;
    }
    c.eat(&["COLUMN"]);
    if add {
        c.eat(&["IF", "NOT", "EXISTS"]);
        let Some(column) = c.word() else {
            return Clause::Other;
        };
        let rest = c.rest();
        Clause::AddColumn {
            column,
            ty: parse_type(rest),
            not_null: rest
                .windows(2)
                .any(|w| w[0].is_kw("NOT") && w[1].is_kw("NULL"))
                || rest
                    .windows(2)
                    .any(|w| w[0].is_kw("PRIMARY") && w[1].is_kw("KEY")),
            default: rest
                .iter()
                .any(|t| t.is_any(&["DEFAULT", "AS", "GENERATED"])),
        }
    } else {
        c.eat(&["IF", "EXISTS"]);
        c.word()
            .map_or(Clause::Other, |column| Clause::DropColumn { column })
    }
}

/// After `ADD`: `[CONSTRAINT name] UNIQUE | CHECK | FOREIGN KEY | PRIMARY KEY`, consumed.
fn constraint_kind(c: &mut Cur<'_>) -> Option<Constraint> {
    let start = c.i;
    if c.eat(&["CONSTRAINT"]) {
        c.word();
    }
    let kind = match c.peek() {
        Some(t) if t.is_kw("UNIQUE") => Constraint::Unique,
        Some(t) if t.is_kw("CHECK") => Constraint::Check,
        Some(t) if t.is_kw("FOREIGN") => Constraint::ForeignKey,
        Some(t) if t.is_kw("PRIMARY") => Constraint::PrimaryKey,
        Some(_) if c.i > start => Constraint::Other,
        _ => {
            c.i = start;
            return None;
        }
    };
    Some(kind)
}

fn drop(c: &mut Cur<'_>, f: &mut StatementFacts) {
    let Some(kind) = c.peek().filter(|t| t.is_any(&OBJECTS)) else {
        return;
    };
    let is_table = kind.is_kw("TABLE");
    let is_index = kind.is_kw("INDEX");
    c.i += 1;
    c.skip_any(&["VIEW", "CONCURRENTLY"]);
    f.drops_index_if_exists = c.eat(&["IF", "EXISTS"]) && is_index;
    while let Some((name, table)) = c.name() {
        if is_table {
            f.drops_tables.push(name.clone());
        }
        f.changes
            .push(table.into_iter().chain([name]).collect::<Vec<_>>());
        if !c.peek().is_some_and(|t| t.is_punct(',')) {
            break;
        }
        c.i += 1;
    }
}

//! Offline checks for `verify`: irreversible migrations and what CockroachDB cannot run
//! atomically inside one transaction.
//!
//! The analysis is a heuristic reading of keywords and names in each statement (as cut by
//! [`crate::split`]; strings and comments are skipped, keywords are case-insensitive, names
//! are compared without schema qualification). It can miss things and it can be fooled; it
//! only ever warns. Rules, by name:
//! - `irreversible`: the file has no `-- @UNDO` section.
//! - For transactional files only (CockroachDB runs schema changes on existing tables as
//!   background jobs after the commit, so a transaction holding several cannot be atomic):
//!   - `multiple_schema_changes`: more than one schema-change statement on objects that were
//!     not created earlier in the same file;
//!   - `schema_change_after_write`: such a schema change after an INSERT, UPDATE, DELETE or
//!     UPSERT;
//!   - `add_column_then_use`: `ALTER TABLE t ADD COLUMN c`, then a later statement naming both
//!     `t` and `c`;
//!   - `drop_column_with_other_ddl`: `DROP COLUMN` together with another schema change on an
//!     existing object (another statement, or another clause of the same `ALTER`).
//!
//! The forward and the undo section are checked separately; statement indexes are 1-based
//! within their section, and undo statements are called "undo statement N" in messages.

use std::collections::HashSet;

use crate::source::Migration;
use crate::split::{TokenKind, split, tokens};

/// A warning about one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The migration's version.
    pub version: i64,
    /// The rule that fired, e.g. `irreversible`, `multiple_schema_changes`.
    pub rule: &'static str,
    /// The 1-based index of the statement at fault, when one is.
    pub statement: Option<usize>,
    /// What is wrong, naming the file and statement, and the fix.
    pub message: String,
}

/// The fix suggested for the transactional rules.
pub const FIX: &str = "split it into separate migration files, or mark the file \
     `-- @NO_TRANSACTION` with idempotent statements (IF NOT EXISTS / IF EXISTS)";

/// One token, as lint reads it.
#[derive(Debug, Clone)]
enum Tok {
    /// A keyword or name: upper-cased for keyword matching, lower-cased as a name.
    Word { upper: String, name: String },
    /// A quoted identifier: the name, case kept.
    Quoted(String),
    /// A single punctuation character.
    Punct(char),
    /// Strings, numbers, placeholders.
    Other,
}

impl Tok {
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { upper, .. } if upper == kw)
    }
    fn name(&self) -> Option<&str> {
        match self {
            Tok::Word { name, .. } => Some(name),
            Tok::Quoted(name) => Some(name),
            _ => None,
        }
    }
    fn is_punct(&self, c: char) -> bool {
        matches!(self, Tok::Punct(p) if *p == c)
    }
}

fn lex(text: &str) -> Vec<Tok> {
    tokens(text)
        .into_iter()
        .filter_map(|t| {
            let raw = &text[t.start..t.end];
            match t.kind {
                TokenKind::LineComment | TokenKind::BlockComment => None,
                TokenKind::Word => Some(Tok::Word {
                    upper: raw.to_ascii_uppercase(),
                    name: raw.to_lowercase(),
                }),
                TokenKind::QuotedIdent => {
                    let inner = raw.strip_prefix('"').unwrap_or(raw);
                    let inner = inner.strip_suffix('"').unwrap_or(inner);
                    Some(Tok::Quoted(inner.replace("\"\"", "\"")))
                }
                TokenKind::Punct => raw.chars().next().map(Tok::Punct),
                _ => Some(Tok::Other),
            }
        })
        .collect()
}

/// A cursor over a statement's tokens.
struct Cur<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    /// Consumes the keyword sequence `kws` if it is next.
    fn eat(&mut self, kws: &[&str]) -> bool {
        let ok = kws
            .iter()
            .enumerate()
            .all(|(k, kw)| self.toks.get(self.i + k).is_some_and(|t| t.is_kw(kw)));
        if ok {
            self.i += kws.len();
        }
        ok
    }
    /// Consumes any of the single keywords in `kws`, repeatedly.
    fn skip_any(&mut self, kws: &[&str]) {
        while self
            .peek()
            .is_some_and(|t| kws.iter().any(|kw| t.is_kw(kw)))
        {
            self.i += 1;
        }
    }
    /// Reads a possibly qualified name (`a.b.c`, CockroachDB's `table@index`): returns the
    /// last component, and the part before `@` when there is one.
    fn name(&mut self) -> Option<(String, Option<String>)> {
        let mut last = self.peek()?.name()?.to_string();
        self.i += 1;
        let mut table = None;
        loop {
            let sep = match self.peek() {
                Some(t) if t.is_punct('.') => '.',
                Some(t) if t.is_punct('@') => '@',
                _ => break,
            };
            let Some(next) = self.toks.get(self.i + 1).and_then(Tok::name) else {
                break;
            };
            if sep == '@' {
                table = Some(last);
            }
            last = next.to_string();
            self.i += 2;
        }
        Some((last, table))
    }
}

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

/// What a statement does, as far as the rules care.
#[derive(Debug, Default)]
struct Facts {
    /// Objects it creates (tables, indexes, views, ...).
    creates: Vec<String>,
    /// Objects it changes; empty when it changes none. For an index the table comes first
    /// when known. The statement is a schema change on an existing object when any of them
    /// was not created earlier.
    changes: Vec<Vec<String>>,
    /// ALTER TABLE ... ADD COLUMN: (table, column).
    adds: Vec<(String, String)>,
    /// ALTER TABLE ... DROP COLUMN was seen.
    drops_column: bool,
    /// ALTER TABLE ... ALTER [COLUMN] c [SET DATA] TYPE: the column.
    alters_type: Option<String>,
    /// Clauses of an ALTER (comma-separated at the top level).
    clauses: usize,
    /// It writes rows.
    writes: bool,
}

fn analyse(toks: &[Tok]) -> Facts {
    let mut f = Facts::default();
    let mut c = Cur { toks, i: 0 };
    if c.eat(&["CREATE"]) {
        c.skip_any(&[
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
        ]);
        if c.eat(&["INDEX"]) {
            c.skip_any(&["CONCURRENTLY"]);
            c.eat(&["IF", "NOT", "EXISTS"]);
            let index = if c.peek().is_some_and(|t| t.is_kw("ON")) {
                None
            } else {
                c.name().map(|(n, _)| n)
            };
            if c.eat(&["ON"]) {
                c.skip_any(&["ONLY"]);
                if let Some((table, _)) = c.name() {
                    f.changes.push(vec![table]);
                }
            }
            f.creates.extend(index);
        } else if c.peek().is_some_and(|t| OBJECTS.iter().any(|o| t.is_kw(o))) {
            c.i += 1;
            c.eat(&["IF", "NOT", "EXISTS"]);
            if let Some((name, _)) = c.name() {
                f.creates.push(name);
            }
        }
    } else if c.eat(&["ALTER"]) {
        let Some(kind) = c.peek().filter(|t| OBJECTS.iter().any(|o| t.is_kw(o))) else {
            return f;
        };
        let is_table = kind.is_kw("TABLE");
        c.i += 1;
        c.skip_any(&["VIEW"]);
        c.eat(&["IF", "EXISTS"]);
        c.skip_any(&["ONLY"]);
        let Some((name, table)) = c.name() else {
            return f;
        };
        f.changes
            .push(table.into_iter().chain([name.clone()]).collect());
        // The clauses, split at top-level commas.
        let mut depth = 0usize;
        let mut start = c.i;
        let mut clauses = Vec::new();
        for (k, t) in toks.iter().enumerate().skip(c.i) {
            if t.is_punct('(') {
                depth += 1;
            } else if t.is_punct(')') {
                depth = depth.saturating_sub(1);
            } else if t.is_punct(',') && depth == 0 {
                clauses.push(&toks[start..k]);
                start = k + 1;
            }
        }
        clauses.push(&toks[start..]);
        f.clauses = clauses.len();
        if is_table {
            for clause in clauses {
                let mut cc = Cur { toks: clause, i: 0 };
                if cc.eat(&["ALTER"]) {
                    cc.eat(&["COLUMN"]);
                    let col = cc.peek().and_then(Tok::name).map(str::to_string);
                    cc.i += 1;
                    cc.eat(&["SET", "DATA"]);
                    if cc.eat(&["TYPE"]) {
                        f.alters_type = col;
                    }
                    continue;
                }
                let add = cc.eat(&["ADD"]);
                if !add && !cc.eat(&["DROP"]) {
                    continue;
                }
                let not_column = [
                    "CONSTRAINT",
                    "PRIMARY",
                    "UNIQUE",
                    "FOREIGN",
                    "CHECK",
                    "INDEX",
                    "EXCLUDE",
                ];
                if cc
                    .peek()
                    .is_some_and(|t| not_column.iter().any(|k| t.is_kw(k)))
                {
                    continue;
                }
                cc.eat(&["COLUMN"]);
                if add {
                    cc.eat(&["IF", "NOT", "EXISTS"]);
                    if let Some(col) = cc.peek().and_then(Tok::name) {
                        f.adds.push((name.clone(), col.to_string()));
                    }
                } else {
                    f.drops_column = true;
                }
            }
        }
    } else if c.eat(&["DROP"]) {
        if !c.peek().is_some_and(|t| OBJECTS.iter().any(|o| t.is_kw(o))) {
            return f;
        }
        c.i += 1;
        c.skip_any(&["VIEW", "CONCURRENTLY"]);
        c.eat(&["IF", "EXISTS"]);
        while let Some((name, table)) = c.name() {
            f.changes
                .push(table.into_iter().chain([name]).collect::<Vec<_>>());
            if !c.peek().is_some_and(|t| t.is_punct(',')) {
                break;
            }
            c.i += 1;
        }
    } else if c.eat(&["TRUNCATE"]) {
        c.skip_any(&["TABLE", "ONLY"]);
        while let Some((name, _)) = c.name() {
            f.changes.push(vec![name]);
            if !c.peek().is_some_and(|t| t.is_punct(',')) {
                break;
            }
            c.i += 1;
        }
    } else if c.peek().is_some_and(|t| {
        ["INSERT", "UPDATE", "DELETE", "UPSERT"]
            .iter()
            .any(|k| t.is_kw(k))
    }) {
        f.writes = true;
    } else if c.eat(&["WITH"]) {
        f.writes = toks.iter().any(|t| {
            ["INSERT", "UPDATE", "DELETE", "UPSERT"]
                .iter()
                .any(|k| t.is_kw(k))
        });
    }
    f
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

fn check_section(m: &Migration, undo: bool, sql: &str, out: &mut Vec<Warning>) {
    let statements = split(sql);
    let toks: Vec<Vec<Tok>> = statements.iter().map(|s| lex(&s.text)).collect();
    let facts: Vec<Facts> = toks.iter().map(|t| analyse(t)).collect();
    let label = |n: usize| {
        let section = if undo { "undo statement" } else { "statement" };
        format!(
            "{}: {section} {n} (`{}`)",
            m.path.display(),
            excerpt(&statements[n - 1].text)
        )
    };
    let mut warn = |rule: &'static str, n: usize, what: String| {
        out.push(Warning {
            version: m.version,
            rule,
            statement: Some(n),
            message: format!(
                "{}: {what}; CockroachDB cannot run this atomically in one transaction: {FIX}",
                label(n)
            ),
        });
    };

    // Which statements change objects that existed before the file.
    let mut created: HashSet<String> = HashSet::new();
    let mut existing_change = vec![false; facts.len()];
    for (k, f) in facts.iter().enumerate() {
        existing_change[k] = f
            .changes
            .iter()
            .any(|names| !names.iter().any(|n| created.contains(n)));
        created.extend(f.creates.iter().cloned());
    }
    let changes: Vec<usize> = (0..facts.len()).filter(|&k| existing_change[k]).collect();

    if let [first, second, ..] = changes[..] {
        let list: Vec<String> = changes.iter().map(|k| (k + 1).to_string()).collect();
        warn(
            "multiple_schema_changes",
            second + 1,
            format!(
                "{} schema changes on existing objects in one transaction (statements {}, the \
                 first is statement {})",
                changes.len(),
                list.join(", "),
                first + 1
            ),
        );
    }

    if let Some(w) = facts.iter().position(|f| f.writes)
        && let Some(&k) = changes.iter().find(|&&k| k > w)
    {
        warn(
            "schema_change_after_write",
            k + 1,
            format!(
                "a schema change on an existing object after statement {} wrote rows in the \
                 same transaction",
                w + 1
            ),
        );
    }

    for (k, f) in facts.iter().enumerate() {
        if !existing_change[k] {
            continue;
        }
        for (table, column) in &f.adds {
            let used = toks.iter().enumerate().skip(k + 1).find(|(_, t)| {
                let names: HashSet<&str> = t.iter().filter_map(Tok::name).collect();
                names.contains(table.as_str()) && names.contains(column.as_str())
            });
            if let Some((j, _)) = used {
                warn(
                    "add_column_then_use",
                    j + 1,
                    format!(
                        "uses column `{column}` of `{table}`, added by statement {} in the same \
                         transaction, before the new column is visible",
                        k + 1
                    ),
                );
            }
        }
    }

    check_alter_type(&facts, &existing_change, |n, what| {
        warn("alter_column_type", n, what)
    });

    for (k, f) in facts.iter().enumerate() {
        if !(existing_change[k] && f.drops_column) {
            continue;
        }
        let others: Vec<String> = changes
            .iter()
            .filter(|&&j| j != k)
            .map(|j| (j + 1).to_string())
            .collect();
        // Clauses of one ALTER TABLE are CockroachDB's documented atomic way; other
        // statements' schema changes are not.
        if others.is_empty() {
            continue;
        }
        let with = format!("the schema changes of statements {}", others.join(", "));
        warn(
            "drop_column_with_other_ddl",
            k + 1,
            format!(
                "drops a column together with {with}; if one of them fails after the commit the \
                 dropped column's data can be lost"
            ),
        );
    }
}

/// `ALTER COLUMN ... TYPE` is not supported inside an explicit transaction on CockroachDB.
fn check_alter_type(
    facts: &[Facts],
    existing_change: &[bool],
    mut warn: impl FnMut(usize, String),
) {
    for (k, f) in facts.iter().enumerate() {
        if let (Some(col), true) = (&f.alters_type, existing_change[k]) {
            warn(
                k + 1,
                format!(
                    "changes the type of column `{col}`, which CockroachDB does not support inside an explicit transaction"
                ),
            );
        }
    }
}

/// Lints one migration.
pub fn lint(m: &Migration) -> Vec<Warning> {
    let mut out = Vec::new();
    if m.down.is_none() {
        out.push(Warning {
            version: m.version,
            rule: "irreversible",
            statement: None,
            message: format!(
                "{}: has no `-- @UNDO` section, so a rollback through version {} will be \
                 refused; to make it reversible add a line `-- @UNDO` followed by the undo SQL",
                m.path.display(),
                m.version
            ),
        });
    }
    if m.down.as_deref().is_some_and(|d| d.trim().is_empty()) {
        out.push(Warning {
            version: m.version,
            rule: "empty_undo",
            statement: None,
            message: format!(
                "{}: its `-- @UNDO` section has no statements, so a rollback removes its row \
                 without undoing anything; write the undo SQL, or remove the `-- @UNDO` line to \
                 make the migration irreversible",
                m.path.display()
            ),
        });
    }
    if !m.no_transaction {
        check_section(m, false, &m.up, &mut out);
        if let Some(down) = &m.down {
            check_section(m, true, down, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parse;
    use std::path::Path;

    fn migration(body: &str) -> Migration {
        match parse(Path::new("migrations/7_test.sql"), body.as_bytes()) {
            Ok(m) => m,
            Err(p) => panic!("test migration does not load: {p:?}"),
        }
    }

    /// The rules that fire, with their statements, for `body` given an undo section (a
    /// no-op one unless `body` has its own marker): so neither `irreversible` nor
    /// `empty_undo` fires unless the body asks for it.
    fn rules(body: &str) -> Vec<(&'static str, Option<usize>)> {
        let body = if body.lines().any(|l| l.trim() == "-- @UNDO") {
            body.to_string()
        } else {
            format!("{body}\n-- @UNDO\nSELECT 1;\n")
        };
        lint(&migration(&body))
            .into_iter()
            .map(|w| (w.rule, w.statement))
            .collect()
    }

    #[test]
    fn irreversible() {
        let w = lint(&migration("SELECT 1;"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].rule, "irreversible");
        assert_eq!(w[0].version, 7);
        assert_eq!(w[0].statement, None);
        assert!(w[0].message.contains("migrations/7_test.sql"));
        assert!(w[0].message.contains("refused"));
        assert!(w[0].message.contains("-- @UNDO"));
        assert!(lint(&migration("SELECT 1;\n-- @UNDO\nSELECT 2;")).is_empty());
        // A no-op undo counts as reversible, with its own warning.
        let w = lint(&migration("SELECT 1;\n-- @UNDO\n"));
        assert_eq!(w.iter().map(|w| w.rule).collect::<Vec<_>>(), ["empty_undo"]);
    }

    #[test]
    fn new_tables_are_fine() {
        assert!(
            rules(
                "CREATE TABLE users (id INT PRIMARY KEY, email STRING);\n\
                 CREATE INDEX users_email ON users (email);\n\
                 ALTER TABLE users ADD COLUMN name STRING;\n\
                 UPDATE users SET name = 'x';\n\
                 CREATE UNIQUE INDEX ON public.users (name);\n\
                 DROP INDEX users@users_email;\n\
                 INSERT INTO users (id, name) VALUES (1, 'a');"
            )
            .is_empty()
        );
    }

    #[test]
    fn multiple_schema_changes() {
        let w = rules(
            "ALTER TABLE accounts ADD COLUMN note STRING;\nCREATE INDEX ON orders (placed_at);",
        );
        assert_eq!(w, [("multiple_schema_changes", Some(2))]);
        let w = rules("alter table a rename to b; drop index a@i; drop table c;");
        assert_eq!(w, [("multiple_schema_changes", Some(2))]);
        assert!(rules("ALTER TABLE accounts ADD COLUMN note STRING;").is_empty());
        assert!(rules("ALTER TABLE a ADD COLUMN x INT, ADD COLUMN y INT;").is_empty());
        // In a no-transaction file, quiet.
        let m = migration(
            "-- @NO_TRANSACTION\nALTER TABLE a ADD COLUMN IF NOT EXISTS x INT;\n\
             CREATE INDEX IF NOT EXISTS a_x ON a (x);\n-- @UNDO\nSELECT 1;\n",
        );
        assert!(lint(&m).is_empty());
    }

    #[test]
    fn schema_change_after_write() {
        let w = rules(
            "INSERT INTO audit VALUES (1);\nCREATE TABLE t (a INT);\nALTER TABLE accounts ADD COLUMN x INT;",
        );
        assert_eq!(w, [("schema_change_after_write", Some(3))]);
        // Schema change first, write after: fine (for this rule).
        assert!(
            rules("ALTER TABLE accounts ADD COLUMN x INT;\nINSERT INTO audit VALUES (1);")
                .is_empty()
        );
        // Writes into a new table are fine when no existing table changes.
        assert!(
            rules("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\nCREATE INDEX ON t (a);")
                .is_empty()
        );
        // A CTE that writes counts.
        let w = rules("WITH x AS (DELETE FROM q RETURNING 1) SELECT 1;\nDROP TABLE old;");
        assert_eq!(w, [("schema_change_after_write", Some(2))]);
    }

    #[test]
    fn add_column_then_use() {
        let w = rules(
            "ALTER TABLE accounts ADD COLUMN status STRING;\n\
             UPDATE accounts SET status = 'active';",
        );
        assert_eq!(w, [("add_column_then_use", Some(2))]);
        let w = rules(
            "ALTER TABLE public.accounts ADD COLUMN IF NOT EXISTS \"Status\" STRING;\n\
             INSERT INTO accounts (id, \"Status\") VALUES (1, 'a');",
        );
        assert_eq!(w, [("add_column_then_use", Some(2))]);
        // Another table, or the column name only inside a string: quiet.
        assert!(
            rules(
                "ALTER TABLE accounts ADD COLUMN status STRING;\n\
                 UPDATE orders SET note = 'status';\n\
                 SELECT 'status' FROM accounts;"
            )
            .is_empty()
        );
        // A later index on the new column is both a use and a second schema change.
        let w = rules(
            "ALTER TABLE accounts ADD COLUMN status STRING;\n\
             CREATE INDEX ON accounts (status);",
        );
        assert_eq!(
            w,
            [
                ("multiple_schema_changes", Some(2)),
                ("add_column_then_use", Some(2))
            ]
        );
    }

    #[test]
    fn empty_undo() {
        assert_eq!(rules("SELECT 1;\n-- @UNDO\n"), [("empty_undo", None)]);
        assert_eq!(
            rules("SELECT 1;\n-- @UNDO\n-- nothing to undo\n"),
            [("empty_undo", None)]
        );
        assert!(rules("SELECT 1;\n-- @UNDO\nSELECT 2;\n").is_empty());
    }

    #[test]
    fn alter_column_type() {
        let w = rules("ALTER TABLE a ALTER COLUMN n TYPE BIGINT;");
        assert_eq!(w, [("alter_column_type", Some(1))]);
        let w = rules("ALTER TABLE a ALTER n SET DATA TYPE TEXT;");
        assert_eq!(w, [("alter_column_type", Some(1))]);
        assert!(rules("ALTER TABLE a ALTER COLUMN n SET DEFAULT 1;").is_empty());
        assert!(
            rules("CREATE TABLE a (n INT);\nALTER TABLE a ALTER COLUMN n TYPE BIGINT;").is_empty()
        );
    }

    #[test]
    fn drop_column_with_other_ddl() {
        // Clauses of one ALTER are CockroachDB's documented atomic way.
        assert!(rules("ALTER TABLE a DROP COLUMN old, ADD COLUMN new INT;").is_empty());
        let w = rules("ALTER TABLE a DROP COLUMN old;\nCREATE INDEX ON b (x);");
        assert_eq!(
            w,
            [
                ("multiple_schema_changes", Some(2)),
                ("drop_column_with_other_ddl", Some(1))
            ]
        );
        assert!(rules("ALTER TABLE a DROP COLUMN IF EXISTS old;").is_empty());
        assert!(
            rules("ALTER TABLE a DROP CONSTRAINT c, ADD CONSTRAINT d CHECK (x > 0);").is_empty()
        );
        assert!(rules("CREATE TABLE t (a INT, b INT);\nALTER TABLE t DROP COLUMN b;").is_empty());
    }

    #[test]
    fn undo_section_is_checked_too() {
        let m = migration(
            "CREATE TABLE t (a INT);\n-- @UNDO\nALTER TABLE x DROP COLUMN y;\nDROP TABLE t;",
        );
        let w = lint(&m);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].message.contains("undo statement 2"), "{w:?}");
    }

    #[test]
    fn messages_name_file_statement_excerpt_and_fix() {
        let long = format!(
            "ALTER TABLE a ADD COLUMN b INT DEFAULT {}",
            "1 + ".repeat(30)
        );
        let m = migration(&format!(
            "SELECT 1;\n{long}1;\nDROP INDEX a@i;\n-- @UNDO\nSELECT 1;\n"
        ));
        let w = lint(&m);
        assert_eq!(w.len(), 1);
        let msg = &w[0].message;
        assert!(
            msg.starts_with("migrations/7_test.sql: statement 3 (`DROP INDEX a@i`)"),
            "{msg}"
        );
        assert!(msg.contains(FIX), "{msg}");
        assert!(msg.contains("statements 2, 3"), "{msg}");
        assert_eq!(excerpt(&long).chars().count(), 63);
        assert!(excerpt("a\n   b").eq("a b"));
    }

    #[test]
    fn comments_and_strings_do_not_count() {
        assert!(
            rules(
                "-- ALTER TABLE x ADD COLUMN y INT;\n\
                 SELECT 'ALTER TABLE z DROP COLUMN q' /* DROP TABLE w */;\n\
                 ALTER TABLE a ADD COLUMN b INT;"
            )
            .is_empty()
        );
    }
}

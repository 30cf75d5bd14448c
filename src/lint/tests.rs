//! Unit tests of the file, atomicity and calibration rules.

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
        .filter(|w| !w.rule.starts_with("breaking_"))
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
    let w =
        rules("ALTER TABLE accounts ADD COLUMN note STRING;\nCREATE INDEX ON orders (placed_at);");
    assert_eq!(w, [("multiple_schema_changes", Some(2))]);
    let w = rules("alter table a rename to b; drop index a@i; drop table c;");
    assert_eq!(w, [("multiple_schema_changes", Some(2))]);
    assert!(rules("ALTER TABLE accounts ADD COLUMN note STRING;").is_empty());
    assert!(rules("ALTER TABLE a ADD COLUMN x INT, ADD COLUMN y INT;").is_empty());
    // Two ADD COLUMNs on one table: one job on CockroachDB, nothing validated: quiet.
    assert!(
        rules("ALTER TABLE identities ADD COLUMN a INT;\nALTER TABLE identities ADD COLUMN b TEXT DEFAULT '';")
            .is_empty()
    );
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
        rules("ALTER TABLE accounts ADD COLUMN x INT;\nINSERT INTO audit VALUES (1);").is_empty()
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
    // A later index on the new column is a use (the second change, to the same table and
    // validating nothing, is one job with the first).
    let w = rules(
        "ALTER TABLE accounts ADD COLUMN status STRING;\n\
         CREATE INDEX ON accounts (status);",
    );
    assert_eq!(w, [("add_column_then_use", Some(2))]);
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
    let w = rules("ALTER TABLE a ALTER n SET DATA TYPE INT2;");
    assert_eq!(w, [("alter_column_type", Some(1))]);
    // Widening to an unbounded string is done in place: quiet even without the old type.
    assert!(rules("ALTER TABLE a ALTER n SET DATA TYPE TEXT;").is_empty());
    assert!(rules("ALTER TABLE a ALTER COLUMN n TYPE STRING;").is_empty());
    // A conversion with USING is not a widening.
    let w = rules("ALTER TABLE a ALTER COLUMN n TYPE TEXT USING n::TEXT;");
    assert_eq!(w, [("alter_column_type", Some(1))]);
    assert!(rules("ALTER TABLE a ALTER COLUMN n SET DEFAULT 1;").is_empty());
    assert!(rules("CREATE TABLE a (n INT);\nALTER TABLE a ALTER COLUMN n TYPE BIGINT;").is_empty());
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
    assert!(rules("ALTER TABLE a DROP CONSTRAINT c, ADD CONSTRAINT d CHECK (x > 0);").is_empty());
    assert!(rules("CREATE TABLE t (a INT, b INT);\nALTER TABLE t DROP COLUMN b;").is_empty());
}

#[test]
fn undo_section_is_checked_too() {
    let m =
        migration("CREATE TABLE t (a INT);\n-- @UNDO\nALTER TABLE x DROP COLUMN y;\nDROP TABLE t;");
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
        "SELECT 1;\n{long}1;\nDROP INDEX b@i;\n-- @UNDO\nSELECT 1;\n"
    ));
    let w = lint(&m);
    assert_eq!(w.len(), 1);
    let msg = &w[0].message;
    assert!(
        msg.starts_with("migrations/7_test.sql: statement 3 (`DROP INDEX b@i`)"),
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

/// The warnings of a set, by (version, rule, severity).
fn set_rules(files: &[&str]) -> Vec<(i64, &'static str, Severity)> {
    let set: Vec<Migration> = files
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let name = format!("migrations/{}_m.sql", i + 1);
            parse(
                Path::new(&name),
                format!("{body}\n-- @UNDO\nSELECT 1;\n").as_bytes(),
            )
            .expect("loads")
        })
        .collect();
    lint_all(&set)
        .into_iter()
        .map(|w| (w.version, w.rule, w.severity))
        .collect()
}

#[test]
fn widening_a_known_column_is_quiet() {
    let create = "CREATE TABLE users (id INT8 PRIMARY KEY, login VARCHAR(32) NOT NULL, n INT4, \
                  price DECIMAL(10, 2), CONSTRAINT u UNIQUE (login));";
    for change in [
        "ALTER TABLE users ALTER COLUMN login TYPE VARCHAR(39);",
        "ALTER TABLE users ALTER COLUMN login TYPE STRING;",
        "ALTER TABLE users ALTER COLUMN login SET DATA TYPE TEXT;",
        "ALTER TABLE users ALTER COLUMN n TYPE BIGINT;",
        "ALTER TABLE users ALTER COLUMN price TYPE DECIMAL(12, 2);",
    ] {
        assert_eq!(set_rules(&[create, change]), [], "{change}");
    }
    for change in [
        "ALTER TABLE users ALTER COLUMN login TYPE VARCHAR(16);",
        "ALTER TABLE users ALTER COLUMN n TYPE INT2;",
        "ALTER TABLE users ALTER COLUMN login TYPE INT8 USING login::INT8;",
        "ALTER TABLE users ALTER COLUMN price TYPE DECIMAL(12, 4);",
    ] {
        let got: Vec<&str> = set_rules(&[create, change]).iter().map(|w| w.1).collect();
        assert_eq!(
            got,
            ["alter_column_type", "breaking_alter_column_type"],
            "{change}"
        );
    }
    // The model follows renames and later changes.
    let got = set_rules(&[
        create,
        "ALTER TABLE users ALTER COLUMN login TYPE VARCHAR(64);",
        "-- @CONTRACT\nALTER TABLE users RENAME TO accounts;",
        "ALTER TABLE accounts ALTER COLUMN login TYPE VARCHAR(48);",
    ]);
    assert_eq!(
        got,
        [
            (4, "alter_column_type", Severity::Risk),
            (4, "breaking_alter_column_type", Severity::Risk)
        ]
    );
    // Alone, a bounded target cannot be told widening: it warns.
    assert_eq!(
        rules("ALTER TABLE users ALTER COLUMN login TYPE VARCHAR(39);"),
        [("alter_column_type", Some(1))]
    );
}

#[test]
fn comment_on_a_new_column_is_not_a_use() {
    assert!(
        rules(
            "ALTER TABLE accounts ADD COLUMN status STRING;\n\
             COMMENT ON COLUMN accounts.status IS 'the status';"
        )
        .is_empty()
    );
}

#[test]
fn index_only_files() {
    // Many idempotent plain index builds: quiet.
    assert!(
        rules(
            "CREATE INDEX IF NOT EXISTS a_x ON a (x);\n\
             CREATE INDEX IF NOT EXISTS a_y ON a (y);\n\
             CREATE INDEX IF NOT EXISTS b_z ON b (z) STORING (w);"
        )
        .is_empty()
    );
    let sev = |body: &str| -> Vec<(&'static str, Severity)> {
        lint(&migration(&format!("{body}\n-- @UNDO\nSELECT 1;")))
            .into_iter()
            .map(|w| (w.rule, w.severity))
            .collect()
    };
    // Plain builds on one table: one job, nothing validated: quiet.
    assert!(sev("CREATE INDEX a_x ON a (x);\nCREATE INDEX a_y ON a (y);").is_empty());
    // On two tables: two jobs, each taking effect on its own: a note.
    assert_eq!(
        sev("CREATE INDEX a_x ON a (x);\nCREATE INDEX b_y ON b (y);"),
        [("multiple_schema_changes", Severity::Note)]
    );
    // A unique index among them can fail at COMMIT on existing duplicates.
    assert_eq!(
        sev(
            "CREATE INDEX IF NOT EXISTS a_x ON a (x);\nCREATE UNIQUE INDEX IF NOT EXISTS a_y ON a (y);"
        ),
        [
            ("multiple_schema_changes", Severity::Risk),
            ("breaking_new_constraint", Severity::Risk)
        ]
    );
}

#[test]
fn the_atomicity_messages_say_what_cockroachdb_does() {
    let msg = |body: &str, rule: &str| -> String {
        lint(&migration(&format!("{body}\n-- @UNDO\nSELECT 1;")))
            .into_iter()
            .find(|w| w.rule == rule)
            .map(|w| w.message)
            .unwrap_or_else(|| panic!("{rule} did not fire for {body}"))
    };
    // A validated change among others on one table: reverted together after COMMIT.
    let m = msg(
        "ALTER TABLE a ADD COLUMN x INT;\nCREATE UNIQUE INDEX a_y ON a (y);",
        "multiple_schema_changes",
    );
    assert!(m.contains("statement 2 is validated"), "{m}");
    assert!(m.contains("XXA00"), "{m}");
    assert!(!m.contains("other tables"), "{m}");
    assert!(!m.contains("cannot run this atomically"), "{m}");
    // Several tables, one validated: the others may already have taken effect.
    let m = msg(
        "ALTER TABLE a ADD COLUMN x INT;\nCREATE UNIQUE INDEX b_y ON b (y);",
        "multiple_schema_changes",
    );
    assert!(m.contains("other tables"), "{m}");
    let m = msg(
        "ALTER TABLE a ADD COLUMN b INT;\nUPDATE a SET b = 1;",
        "add_column_then_use",
    );
    assert!(m.contains("only after COMMIT"), "{m}");
    assert!(m.contains(FIX), "{m}");
}

#[test]
fn severities_and_has_risk() {
    let w = lint(&migration("SELECT 1;"));
    assert_eq!(w[0].severity, Severity::Note);
    assert!(!has_risk(&w));
    let w = lint(&migration(
        "ALTER TABLE a ADD COLUMN b INT;\nUPDATE a SET b = 1;\n-- @UNDO\nSELECT 1;",
    ));
    assert_eq!(w[0].rule, "add_column_then_use");
    assert_eq!(w[0].line, Some(2));
    assert!(has_risk(&w));
    assert!(!has_risk(&[]));
    let json = serde_json::to_value(&w[0]).expect("json");
    assert_eq!(json["severity"], "risk");
    assert_eq!(json["line"], 2);
}

#[test]
fn empty_forward() {
    let w = lint(&migration(
        "-- only for the other database\n-- @UNDO\nDROP TABLE t;",
    ));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        (w[0].rule, w[0].severity),
        ("empty_forward", Severity::Note)
    );
    assert!(w[0].message.contains("down-only"), "{w:?}");
    let w = lint(&migration(""));
    assert_eq!(
        w.iter().map(|w| w.rule).collect::<Vec<_>>(),
        ["empty_forward"]
    );
    assert!(w[0].message.contains("placeholder"), "{w:?}");
}

#[test]
fn undo_warnings_carry_file_lines() {
    let m = migration(
        "CREATE TABLE t (a INT);\n-- @UNDO\n\nALTER TABLE x DROP COLUMN y;\nDROP TABLE t;",
    );
    let w = lint(&m);
    assert_eq!(w[0].statement, Some(2));
    assert_eq!(w[0].line, Some(5));
}

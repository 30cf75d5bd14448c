//! Unit tests of one file's parsing: marker, directives, statements, checksum.

use super::*;
use crate::source::split::split;
use crate::source::{UNDO_PLACEHOLDER, UP_PLACEHOLDER, render};
use proptest::prelude::*;

fn one(name: &str, body: &str) -> Result<Migration, Vec<Problem>> {
    parse(Path::new(name), body.as_bytes())
}

fn problems(name: &str, body: &str) -> Vec<Problem> {
    match one(name, body) {
        Ok(m) => panic!("expected problems, got {m:?}"),
        Err(p) => p,
    }
}

#[test]
fn transaction_control_is_refused_but_savepoints_are_fine() {
    for (body, bad) in [
        (
            "CREATE TABLE a (id INT);\nCOMMIT;\nCREATE TABLE b (id INT);",
            Some(2),
        ),
        ("BEGIN;\nCREATE TABLE a (id INT);", Some(1)),
        ("START TRANSACTION;\nSELECT 1;", Some(1)),
        ("SELECT 1;\n-- @UNDO\nROLLBACK;", Some(3)),
        (
            "SAVEPOINT s;\nSELECT 1;\nROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;",
            None,
        ),
        ("DO $$ BEGIN PERFORM 1; END $$;\nSELECT 'COMMIT';", None),
        (
            "CREATE FUNCTION one() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND;",
            None,
        ),
    ] {
        let got = parse(Path::new("1_x.sql"), body.as_bytes());
        match bad {
            None => assert!(got.is_ok(), "{body}: {got:?}"),
            Some(line) => {
                let problems = got.err().unwrap_or_default();
                assert_eq!(problems.len(), 1, "{body}: {problems:?}");
                assert_eq!(problems[0].line, Some(line), "{body}");
                assert!(problems[0].message.contains("transaction"), "{body}");
            }
        }
    }
}

#[test]
fn the_undo_placeholder_does_not_load() {
    let body = render("CREATE TABLE t (id INT);", Some(""));
    let problems = parse(Path::new("1_x.sql"), body.as_bytes())
        .err()
        .unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("placeholder"));
    assert!(
        parse(
            Path::new("1_x.sql"),
            render("SELECT 1;", Some("SELECT 2;")).as_bytes()
        )
        .is_ok()
    );
}

#[test]
fn render_round_trips() {
    let body = render("CREATE TABLE t (a INT);", Some("DROP TABLE t;"));
    assert_eq!(body, "CREATE TABLE t (a INT);\n\n-- @UNDO\nDROP TABLE t;\n");
    let m = one("1_t.sql", &body).expect("loads");
    assert_eq!(split(&m.up).len(), 1);
    assert_eq!(m.down.as_deref().map(split).map(|s| s.len()), Some(1));

    let body = render("SELECT 1", None);
    assert_eq!(one("1_t.sql", &body).expect("loads").down, None);

    // The placeholder template must be edited before it loads.
    let body = render("", Some(""));
    assert!(body.contains(UP_PLACEHOLDER) && body.contains(UNDO_PLACEHOLDER));
    let p = problems("1_t.sql", &body);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().all(|p| p.message.contains("placeholder")), "{p:?}");
}

#[test]
fn body_parts() {
    let m = one(
        "0042_add_users.sql",
        "-- create the table\nCREATE TABLE users (id INT PRIMARY KEY);\n\n  -- @UNDO \r\nDROP TABLE users;\n",
    )
    .expect("loads");
    assert_eq!(m.version, 42);
    assert_eq!(m.slug, "add_users");
    assert_eq!(m.description, "add users");
    assert!(!m.no_transaction);
    assert_eq!(
        m.up,
        "-- create the table\nCREATE TABLE users (id INT PRIMARY KEY);\n"
    );
    assert_eq!(m.down.as_deref(), Some("DROP TABLE users;\n"));
    assert_eq!(m.checksum, checksum(&m.up, m.down.as_deref()));
    assert_eq!(m.checksum.len(), 64);

    let m = one("1_x.sql", "SELECT 1;").expect("loads");
    assert_eq!(m.down, None);
    // A marker with no undo statement: a no-op undo.
    let m = one("1_x.sql", "SELECT 1;\n-- @UNDO\n-- nothing to undo\n").expect("loads");
    assert_eq!(m.down.as_deref(), Some(""));
}

#[test]
fn directives() {
    let m = one(
        "1_x.sql",
        "\n-- backfill\n-- @NO_TRANSACTION\n\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 100;\n\
         UPDATE u SET a = 1;\n-- @REPEAT_UNTIL_ZERO\nUPDATE v SET b = 2 LIMIT 10;\n\
         -- @UNDO\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM w LIMIT 5;\n",
    )
    .expect("loads");
    assert!(m.no_transaction);
    let flags: Vec<bool> = split(&m.up).iter().map(|s| s.repeat_until_zero).collect();
    assert_eq!(flags, [true, false, true]);
    let down = m.down.as_deref().map(split).unwrap_or_default();
    assert!(down[0].repeat_until_zero);
    // A block comment header does not count as SQL.
    let m = one("1_x.sql", "/* header */\n-- @NO_TRANSACTION\nSELECT 1;").expect("loads");
    assert!(m.no_transaction);
    // Ordinary `-- @...` comments after SQL are comments.
    assert!(one("1_x.sql", "SELECT 1;\n-- @todo tidy up\nSELECT 2;").is_ok());
}

#[test]
fn unknown_directive() {
    let p = problems("1_x.sql", "-- @NO_TRANSACTION\n-- @FOO\nSELECT 1;");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(2));
    assert!(p[0].message.contains("unknown directive `-- @FOO`"));
    let p = problems("1_x.sql", "-- @no_transaction\nSELECT 1;");
    assert_eq!(p[0].line, Some(1));
    assert!(p[0].message.contains("misspelt"), "{p:?}");
    let p = problems("1_x.sql", "SELECT 1;\n-- @undo\nSELECT 2;");
    assert_eq!(p[0].line, Some(2));
}

#[test]
fn directive_after_sql() {
    let p = problems("1_x.sql", "SELECT 1;\n-- @NO_TRANSACTION\nSELECT 2;");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(2));
    assert!(p[0].message.contains("directives must come before any SQL"));
    let p = problems(
        "1_x.sql",
        "SELECT 1;\n-- @UNDO\n-- @NO_TRANSACTION\nSELECT 2;",
    );
    assert_eq!(p[0].line, Some(3));
}

#[test]
fn two_markers() {
    let p = problems(
        "1_x.sql",
        "SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @UNDO\nSELECT 3;",
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(4));
    assert!(p[0].message.contains("line 2"), "{p:?}");
}

#[test]
fn empty_forward_is_a_no_op_forward() {
    // Down-only: the forward section holds whitespace and comments only.
    for body in [
        "-- @UNDO\nDROP TABLE t;",
        "-- needed on the other database only\n;;\n-- @UNDO\nDROP TABLE t;\n",
    ] {
        let m = one("1_x.sql", body).expect(body);
        assert!(m.up_statements.is_empty(), "{body:?}");
        assert_eq!(
            m.down_statements.as_ref().map(Vec::len),
            Some(1),
            "{body:?}"
        );
    }
    // No statement at all and no marker: a placeholder, a no-op both ways.
    for body in ["", "  \n-- just a comment\n", ";;"] {
        let m = one("1_x.sql", body).expect(body);
        assert!(m.up_statements.is_empty());
        assert_eq!(m.down.as_deref(), Some(""), "{body:?}");
        assert_eq!(m.down_statements, Some(Vec::new()));
        assert_eq!(m.checksum, checksum(&m.up, m.down.as_deref()));
    }
    // Both sections empty with a marker: a no-op both ways too.
    let m = one("1_x.sql", "-- nothing\n-- @UNDO\n-- nothing\n").expect("loads");
    assert_eq!(m.down.as_deref(), Some(""));
    // Directives still apply to a down-only file.
    let m = one("1_x.sql", "-- @NO_TRANSACTION\n-- @UNDO\nDROP INDEX t@i;").expect("loads");
    assert!(m.no_transaction);
}

#[test]
fn the_forward_placeholder_does_not_load() {
    let p = problems("1_t.sql", &render("", None));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].line, Some(1));
    assert!(p[0].message.contains("placeholder"), "{p:?}");
}

#[test]
fn statements_are_split_once_with_file_lines() {
    let m = one(
        "1_x.sql",
        "-- head\nCREATE TABLE t (a INT);\n\nINSERT INTO t VALUES (1);\n-- @UNDO\n\n-- undo\nDELETE FROM t;\nDROP TABLE t;\n",
    )
    .expect("loads");
    let up: Vec<(usize, &str)> = m
        .up_statements
        .iter()
        .map(|s| (s.line, s.text.as_str()))
        .collect();
    assert_eq!(
        up,
        [
            (2, "CREATE TABLE t (a INT)"),
            (4, "INSERT INTO t VALUES (1)")
        ]
    );
    let down: Vec<(usize, &str)> = m
        .down_statements
        .iter()
        .flatten()
        .map(|s| (s.line, s.text.as_str()))
        .collect();
    // Line 8 of the file, not line 3 of the undo section.
    assert_eq!(down, [(8, "DELETE FROM t"), (9, "DROP TABLE t")]);
    assert_eq!(m.up_statements, split(&m.up));
    // Irreversible: no undo statements at all.
    assert_eq!(
        one("1_x.sql", "SELECT 1;").expect("loads").down_statements,
        None
    );
    // A BOM and CRLF do not shift the lines.
    let m = one(
        "1_x.sql",
        "\u{feff}SELECT 1;\r\n-- @UNDO\r\n\r\nSELECT 2;\r\n",
    )
    .expect("loads");
    assert_eq!(m.down_statements.expect("undo")[0].line, 4);
}

#[test]
fn an_undo_problem_names_the_file_line() {
    let p = problems("1_x.sql", "SELECT 1;\n\n\n-- @UNDO\n\n\nCOMMIT;\n");
    assert_eq!(p[0].line, Some(7), "{p:?}");
}

#[test]
fn timeouts_and_contract() {
    let m = one(
        "1_x.sql",
        "-- @STATEMENT_TIMEOUT 10m\n-- @LOCK_TIMEOUT   500ms\n-- @CONTRACT\nALTER TABLE t DROP COLUMN c;",
    )
    .expect("loads");
    assert_eq!(
        m.statement_timeout,
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(m.lock_timeout, Some(std::time::Duration::from_millis(500)));
    assert!(m.contract);
    let m = one("1_x.sql", "SELECT 1;").expect("loads");
    assert_eq!(
        (m.statement_timeout, m.lock_timeout, m.contract),
        (None, None, false)
    );
    // The directive lines are part of the checksum, as any other line.
    let a = one("1_x.sql", "-- @LOCK_TIMEOUT 5s\nSELECT 1;").expect("loads");
    assert_ne!(a.checksum, m.checksum);
}

#[test]
fn bad_directive_values_name_file_and_line() {
    for (body, line, want) in [
        (
            "-- x\n-- @LOCK_TIMEOUT 5 parsecs\nSELECT 1;",
            2,
            "not a duration",
        ),
        ("-- @STATEMENT_TIMEOUT\nSELECT 1;", 1, "needs a duration"),
        ("-- @LOCK_TIMEOUT 0s\nSELECT 1;", 1, "more than zero"),
        ("-- @LOCK_TIMEOUT 10000h\nSELECT 1;", 1, "maximum"),
        (
            "-- @LOCK_TIMEOUT 1s\n-- @LOCK_TIMEOUT 2s\nSELECT 1;",
            2,
            "twice",
        ),
        (
            "SELECT 1;\n-- @STATEMENT_TIMEOUT 1s\nSELECT 2;",
            2,
            "after SQL has started",
        ),
        ("SELECT 1;\n-- @CONTRACT\n", 2, "after SQL has started"),
        ("-- @contract\nSELECT 1;", 1, "misspelt"),
        ("-- @lock_timeout 5s\nSELECT 1;", 1, "misspelt"),
        ("-- @CONTRACT now\nSELECT 1;", 1, "misspelt"),
        ("-- @LOCK_TIMEOUT5s\nSELECT 1;", 1, "unknown directive"),
    ] {
        let p = problems("7_x.sql", body);
        assert_eq!(p.len(), 1, "{body:?}: {p:?}");
        assert_eq!(p[0].line, Some(line), "{body:?}: {p:?}");
        assert!(p[0].message.contains(want), "{body:?}: {p:?}");
        assert!(
            p[0].to_string().starts_with(&format!("7_x.sql:{line}: ")),
            "{p:?}"
        );
    }
}

#[test]
fn repeat_until_zero_needs_no_transaction() {
    let p = problems("1_x.sql", "-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 10;");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(1));
    assert!(p[0].message.contains("@NO_TRANSACTION"));
    let p = problems(
        "1_x.sql",
        "SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 1;",
    );
    assert_eq!(p[0].line, Some(4));
}

#[test]
fn repeat_until_zero_must_precede_a_statement() {
    let head = "-- @NO_TRANSACTION\n";
    // Inside a statement (missing `;`).
    let p = problems(
        "1_x.sql",
        &format!("{head}SELECT 1\n-- @REPEAT_UNTIL_ZERO\nDELETE FROM t LIMIT 1;"),
    );
    assert_eq!(p[0].line, Some(3));
    // At the end.
    let p = problems(
        "1_x.sql",
        &format!("{head}SELECT 1;\n-- @REPEAT_UNTIL_ZERO\n"),
    );
    assert_eq!(p[0].line, Some(3));
}

#[test]
fn not_utf8() {
    let p = parse(Path::new("1_x.sql"), b"SELECT '\xff';").expect_err("bad utf-8");
    assert!(p[0].message.contains("UTF-8"));
    assert!(p[0].message.contains("offset 8"));
}

#[test]
fn crlf_copy_has_the_same_checksum() {
    let unix =
        "CREATE TABLE t (a INT);  \nINSERT INTO t VALUES (1);\n\n-- @UNDO\nDROP TABLE t;\n\n";
    let dos = unix.replace('\n', "\r\n");
    let mac = unix.replace('\n', "\r");
    let a = one("1_t.sql", unix).expect("unix");
    let b = one("1_t.sql", &dos).expect("dos");
    let c = one("1_t.sql", &mac).expect("mac");
    assert_eq!(a.checksum, b.checksum);
    assert_eq!(a.checksum, c.checksum);
    assert_eq!(checksum("a\r\nb \t\r\n", None), checksum("a\nb", None));
    // Content changes, undo presence and undo content all change it.
    assert_ne!(checksum("a", None), checksum("b", None));
    assert_ne!(checksum("a", None), checksum("a", Some("")));
    assert_ne!(checksum("a", Some("x")), checksum("a", Some("y")));
    // Known values: SHA-256 of the normalised text, as `sha256sum` gives it.
    assert_eq!(
        checksum("SELECT 1;\n", None),
        "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a"
    );
    assert_eq!(
        checksum("SELECT 1;\r\n", Some("SELECT 2;  \n\n")),
        "183903103fcdc47575381ebe8bdb930ebbae6c9bc132af45145d254b8913403f"
    );
}

proptest! {
    #[test]
    fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(Path::new("1_x.sql"), &body);
    }
}

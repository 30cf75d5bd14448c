//! Unit tests of the statement splitter.

use super::*;
use proptest::prelude::*;

fn texts(sql: &str) -> Vec<String> {
    split(sql).into_iter().map(|s| s.text).collect()
}

#[test]
fn plain_statements() {
    assert_eq!(texts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
    assert_eq!(texts("SELECT 1;\nSELECT 2"), ["SELECT 1", "SELECT 2"]);
    assert!(texts("").is_empty());
    assert!(texts(" ;; \n ; ").is_empty());
}

#[test]
fn a_begin_atomic_body_is_one_statement_as_psql_splits_it() {
    // PostgreSQL's documented SQL-standard bodies (CREATE FUNCTION, "sql_body").
    let sql = "CREATE FUNCTION add(a integer, b integer) RETURNS integer\n\
        LANGUAGE SQL IMMUTABLE\n\
        BEGIN ATOMIC\n  SELECT a + b;\nEND;\n\
        CREATE OR REPLACE PROCEDURE insert_data(a integer, b integer)\n\
        LANGUAGE SQL\n\
        BEGIN ATOMIC\n  INSERT INTO tbl VALUES (a);\n  \
        SELECT CASE WHEN b > 0 THEN b ELSE 0 END;\n  INSERT INTO tbl VALUES (b);\nEND;\n\
        SELECT 'after';";
    let got = split(sql);
    let bodies: Vec<&str> = got.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:#?}");
    assert!(bodies[0].ends_with("SELECT a + b;\nEND"), "{}", bodies[0]);
    assert!(bodies[1].ends_with("VALUES (b);\nEND"), "{}", bodies[1]);
    assert_eq!((bodies[2], got[2].line), ("SELECT 'after'", 13));
    // Elsewhere BEGIN and END are statements of their own, and a CASE in a RETURN body
    // opens no block.
    assert_eq!(texts("BEGIN; SELECT 1; END;"), ["BEGIN", "SELECT 1", "END"]);
    assert_eq!(
        texts(
            "CREATE FUNCTION s(x int) RETURNS int LANGUAGE sql RETURN CASE WHEN x > 0 THEN 1 END; SELECT 2;"
        ),
        [
            "CREATE FUNCTION s(x int) RETURNS int LANGUAGE sql RETURN CASE WHEN x > 0 THEN 1 END",
            "SELECT 2"
        ]
    );
}

#[test]
fn single_quotes_with_doubled_quote() {
    assert_eq!(
        texts("INSERT INTO t VALUES ('a;''b;'); SELECT 2"),
        ["INSERT INTO t VALUES ('a;''b;')", "SELECT 2"]
    );
    // A backslash is ordinary in a standard string.
    assert_eq!(
        texts(r"SELECT 'a\'; SELECT 2"),
        [r"SELECT 'a\'", "SELECT 2"]
    );
}

#[test]
fn escape_strings() {
    assert_eq!(
        texts(r"SELECT E'a\';b'; SELECT e'\\'; SELECT 3"),
        [r"SELECT E'a\';b'", r"SELECT e'\\'", "SELECT 3"]
    );
    // `e` inside a longer word is not a prefix.
    assert_eq!(texts(r"SELECT some'\'; x"), [r"SELECT some'\'", "x"]);
}

#[test]
fn quoted_identifiers() {
    assert_eq!(
        texts(r#"CREATE TABLE "a;""b" (x INT); SELECT 1"#),
        [r#"CREATE TABLE "a;""b" (x INT)"#, "SELECT 1"]
    );
}

#[test]
fn dollar_quotes() {
    let sql = "CREATE FUNCTION f() RETURNS INT AS $$ SELECT 1; $$ LANGUAGE SQL;\n\
               DO $body$ BEGIN PERFORM 1; $x$ ; $x$ END $body$; SELECT $1; SELECT a$b$c;";
    assert_eq!(
        texts(sql),
        [
            "CREATE FUNCTION f() RETURNS INT AS $$ SELECT 1; $$ LANGUAGE SQL",
            "DO $body$ BEGIN PERFORM 1; $x$ ; $x$ END $body$",
            "SELECT $1",
            "SELECT a$b$c",
        ]
    );
    // `$1$` is not a tag (starts with a digit).
    assert_eq!(texts("SELECT $1$; SELECT 2"), ["SELECT $1$", "SELECT 2"]);
}

#[test]
fn comments() {
    let sql = "-- lead; comment\nSELECT 1 -- trailing;\n; /* a; /* nested; */ still; */ SELECT 2;";
    assert_eq!(texts(sql), ["SELECT 1 -- trailing;", "SELECT 2"]);
    assert!(texts("-- only a comment;\n/* and; another */").is_empty());
}

#[test]
fn lines_are_those_of_the_first_character() {
    let s = split("\n\n-- c\n  SELECT 1;\n/* x\n */ SELECT\n2;SELECT 3");
    let lines: Vec<usize> = s.iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 6, 7]);
}

#[test]
fn repeat_until_zero_marker() {
    let sql = "SELECT 1;\n  -- @REPEAT_UNTIL_ZERO  \nDELETE FROM t LIMIT 10;\nSELECT 3;\n\
               SELECT 4; -- @REPEAT_UNTIL_ZERO\nSELECT 5;\n-- @REPEAT_UNTIL_ZERO extra\nSELECT 6;\n\
               SELECT 7\n-- @REPEAT_UNTIL_ZERO\n;SELECT 8";
    let flags: Vec<bool> = split(sql).iter().map(|s| s.repeat_until_zero).collect();
    assert_eq!(
        flags,
        [false, true, false, false, false, false, false, false]
    );
}

#[test]
fn unterminated_things_run_to_the_end() {
    assert_eq!(texts("SELECT 'abc; SELECT 2"), ["SELECT 'abc; SELECT 2"]);
    assert_eq!(texts("SELECT $$ ; "), ["SELECT $$ ;"]);
    assert_eq!(texts("SELECT 1 /* ; "), ["SELECT 1 /* ;"]);
    assert_eq!(texts("SELECT E'\\"), ["SELECT E'\\"]);
}

#[test]
fn crlf_and_unicode() {
    assert_eq!(
        texts("SELECT 'é;ü';\r\nSELECT \"ß\";\r\n"),
        ["SELECT 'é;ü'", "SELECT \"ß\""]
    );
}

/// A piece of a generated statement: never a top-level `;`, never trailing whitespace.
fn piece() -> impl Strategy<Value = String> {
    let word = "[a-z_][a-z0-9_]{0,6}";
    let text = "[a-z ;'\"$\\\\\n]{0,8}";
    prop_oneof![
        proptest::string::string_regex(word).expect("valid regex"),
        proptest::string::string_regex("[0-9]{1,4}").expect("valid regex"),
        proptest::string::string_regex(text)
            .expect("valid regex")
            .prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        proptest::string::string_regex(text)
            .expect("valid regex")
            .prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
        proptest::string::string_regex(text)
            .expect("valid regex")
            .prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        proptest::string::string_regex(text)
            .expect("valid regex")
            .prop_filter("closes at the end", |s| format!("{s}$$").find("$$")
                == Some(s.len()))
            .prop_map(|s| format!("$${s}$$")),
        proptest::string::string_regex(text)
            .expect("valid regex")
            .prop_filter("closes at the end", |s| format!("{s}$fn$").find("$fn$")
                == Some(s.len()))
            .prop_map(|s| format!("$fn${s}$fn$")),
        proptest::string::string_regex("[a-z ;'\"$]{0,8}")
            .expect("valid regex")
            .prop_map(|s| format!("-- {s}\n")),
        proptest::string::string_regex("[a-z ;'\"$\n]{0,8}")
            .expect("valid regex")
            .prop_filter("no comment delimiters", |s| !s.contains('/')
                && !s.contains('*'))
            .prop_map(|s| format!("/* {s} /* {s} */ */")),
        Just("$1".to_string()),
    ]
}

fn statement() -> impl Strategy<Value = String> {
    (
        proptest::string::string_regex("[A-Z]{1,8}").expect("valid regex"),
        proptest::collection::vec(piece(), 0..6),
        proptest::string::string_regex("[a-z0-9]{1,4}").expect("valid regex"),
    )
        .prop_map(|(head, pieces, tail)| {
            let mut s = head;
            for p in pieces {
                s.push(' ');
                s.push_str(&p);
            }
            s.push(' ');
            s.push_str(&tail);
            s
        })
}

proptest! {
    #[test]
    fn joined_statements_split_back(stmts in proptest::collection::vec(statement(), 0..6)) {
        let script = stmts.join(";\n");
        prop_assert_eq!(texts(&script), stmts.clone());
        let with_semicolon = format!("{};", stmts.join(";\n"));
        prop_assert_eq!(texts(&with_semicolon), stmts);
    }

    #[test]
    fn never_panics_and_texts_are_whole(sql in "(?s).{0,80}") {
        for s in split(&sql) {
            prop_assert!(!s.text.is_empty());
            prop_assert!(s.line >= 1);
            // Re-splitting a statement gives it back whole: no top-level `;` inside.
            prop_assert_eq!(texts(&s.text), vec![s.text.clone()]);
        }
    }

    #[test]
    fn never_panics_on_sql_like_noise(sql in "[a-zE ;'\"$\\\\/*\n-]{0,60}") {
        for s in split(&sql) {
            prop_assert_eq!(texts(&s.text), vec![s.text.clone()]);
        }
    }
}

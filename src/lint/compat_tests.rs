//! Unit tests of the compatibility rules: each fires on its positive case, stays quiet on the
//! expand/contract-safe version of the same change, and `-- @CONTRACT` silences it.

use super::*;
use crate::source::parse;
use std::path::Path;

/// The `breaking_*` rules that fire for a file with `body` and a trivial undo.
fn breaking(body: &str) -> Vec<&'static str> {
    let m = parse(
        Path::new("migrations/9_compat.sql"),
        if body.contains("-- @UNDO") {
            body.to_string()
        } else {
            format!("{body}\n-- @UNDO\nSELECT 1;\n")
        }
        .as_bytes(),
    )
    .expect("loads");
    lint(&m)
        .into_iter()
        .filter(|w| w.rule.starts_with("breaking_"))
        .map(|w| w.rule)
        .collect()
}

#[test]
fn each_rule_fires_is_quiet_when_safe_and_is_silenced_by_contract() {
    // (rule, breaking statement, the safe version of the same change)
    let cases = [
        (
            "breaking_drop_table",
            "DROP TABLE IF EXISTS legacy_sessions;",
            "CREATE TABLE tmp (a INT);\nDROP TABLE tmp;",
        ),
        (
            "breaking_drop_column",
            "ALTER TABLE users DROP COLUMN nickname;",
            "ALTER TABLE users ADD COLUMN tmp INT;\nALTER TABLE users DROP COLUMN tmp;",
        ),
        (
            "breaking_rename_table",
            "ALTER TABLE users RENAME TO accounts;",
            "CREATE TABLE IF NOT EXISTS accounts (id UUID PRIMARY KEY);",
        ),
        (
            "breaking_rename_column",
            "ALTER TABLE users RENAME COLUMN name TO full_name;",
            "ALTER TABLE users ADD COLUMN IF NOT EXISTS full_name STRING;",
        ),
        (
            "breaking_alter_column_type",
            "ALTER TABLE users ALTER COLUMN age TYPE INT2;",
            "ALTER TABLE users ALTER COLUMN bio TYPE STRING;",
        ),
        (
            "breaking_add_not_null_column",
            "ALTER TABLE users ADD COLUMN region STRING NOT NULL;",
            "ALTER TABLE users ADD COLUMN region STRING NOT NULL DEFAULT 'us-east1';",
        ),
        (
            "breaking_set_not_null",
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            "ALTER TABLE users ADD COLUMN note STRING;\nALTER TABLE users ALTER COLUMN note SET NOT NULL;",
        ),
        (
            "breaking_new_constraint",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
            "CREATE TABLE orgs (id INT PRIMARY KEY, slug STRING);\nALTER TABLE orgs ADD CONSTRAINT orgs_slug UNIQUE (slug);",
        ),
        (
            "breaking_new_constraint",
            "ALTER TABLE orders ADD CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
            "ALTER TABLE orders DROP CONSTRAINT IF EXISTS fk_user;",
        ),
        (
            "breaking_new_constraint",
            "ALTER TABLE orders ADD CHECK (total >= 0);",
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS note STRING;",
        ),
        (
            "breaking_new_constraint",
            "CREATE UNIQUE INDEX IF NOT EXISTS users_login ON users (login);",
            "CREATE INDEX IF NOT EXISTS users_login ON users (login);",
        ),
        (
            "breaking_drop_default",
            "ALTER TABLE users ALTER COLUMN created_at DROP DEFAULT;",
            "ALTER TABLE users ALTER COLUMN created_at SET DEFAULT now();",
        ),
    ];
    for (rule, bad, safe) in cases {
        assert_eq!(breaking(bad), [rule], "{bad}");
        assert_eq!(breaking(safe), Vec::<&str>::new(), "{safe}");
        assert_eq!(
            breaking(&format!("-- @CONTRACT\n{bad}")),
            Vec::<&str>::new(),
            "{bad}"
        );
    }
}

#[test]
fn messages_name_file_statement_and_fix() {
    let m = parse(
        Path::new("migrations/9_compat.sql"),
        b"-- @NO_TRANSACTION\nSELECT 1;\nALTER TABLE users DROP COLUMN nickname;\n",
    )
    .expect("loads");
    let w: Vec<Warning> = lint(&m)
        .into_iter()
        .filter(|w| w.rule == "breaking_drop_column")
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    let msg = &w[0].message;
    assert!(
        msg.starts_with(
            "migrations/9_compat.sql: statement 2 (`ALTER TABLE users DROP COLUMN nickname`)"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("expand/contract: release code that no longer reads"),
        "{msg}"
    );
    assert!(msg.contains("-- @CONTRACT"), "{msg}");
    assert_eq!((w[0].severity, w[0].line), (Severity::Risk, Some(3)));
}

#[test]
fn undo_sections_are_not_compatibility_checked() {
    // Undoing a CREATE TABLE drops it: that is what a rollback is for.
    assert!(breaking("CREATE TABLE IF NOT EXISTS t (a INT);\n-- @UNDO\nDROP TABLE t;").is_empty());
}

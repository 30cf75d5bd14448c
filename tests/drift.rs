//! Drift against a real PostgreSQL: the snapshot a run that did work stores, hand changes of
//! each kind named by `status`, `MIGRATE_ON_DRIFT` (warn goes on, refuse exits 32 with nothing
//! applied), a rollback storing its new state, and a no-op `migrate` sending no snapshot query.

mod support;

use support::dressed::{dressed_server, is_sent};
use support::*;

const V1: &str = "CREATE TABLE accounts (id INT PRIMARY KEY, name TEXT DEFAULT 'a', age INT);\n\
                  -- @UNDO\nDROP TABLE accounts;\n";
const V2: &str = "CREATE TABLE orders (id INT PRIMARY KEY);\n-- @UNDO\nDROP TABLE orders;\n";

fn migrate(url: &str, dir: &std::path::Path, on_drift: Option<&str>) -> Output {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_WAIT_TIMEOUT", "10s").arg("migrate");
    if let Some(v) = on_drift {
        c.env("MIGRATE_ON_DRIFT", v);
    }
    run(&mut c)
}

fn status(url: &str, dir: &std::path::Path, json: bool) -> Output {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_WAIT_TIMEOUT", "10s").arg("status");
    if json {
        c.arg("--json");
    }
    let out = run(&mut c);
    out.expect_code(0);
    out
}

/// The `schema_drift` disagreement of `status --json`, if any.
fn drift_of(url: &str, dir: &std::path::Path) -> Option<serde_json::Value> {
    let out = status(url, dir, true);
    let start = out.stdout.find("{\n").expect("status JSON");
    let s: serde_json::Value = serde_json::from_str(&out.stdout[start..]).expect("JSON");
    s["disagreements"]
        .as_array()
        .expect("disagreements")
        .iter()
        .find(|d| d["kind"] == "schema_drift")
        .cloned()
}

fn files(with_v2: bool) -> tempfile::TempDir {
    let mut f: Vec<(&str, &[u8])> = vec![("1_accounts.sql", V1.as_bytes())];
    if with_v2 {
        f.push(("2_orders.sql", V2.as_bytes()));
    }
    dir_with(&f)
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn hand_changes_of_each_kind_are_named_by_status() {
    let db = fresh_db("drift_status");
    let dir = files(false);
    migrate(&db.url, dir.path(), None).expect_code(0);
    assert_eq!(drift_of(&db.url, dir.path()), None);
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    psql(&db.url, "ALTER TABLE accounts DROP COLUMN age");
    psql(
        &db.url,
        "ALTER TABLE accounts ALTER COLUMN name SET DEFAULT 'b'",
    );
    psql(&db.url, "CREATE INDEX accounts_name ON accounts (name)");
    let drift = drift_of(&db.url, dir.path()).expect("a schema_drift disagreement");
    assert_eq!(drift["version"], 1);
    let changes = drift["changes"].to_string();
    for needle in ["by_hand", "column age", "'b'", "accounts_name"] {
        assert!(changes.contains(needle), "{needle} in {changes}");
    }
    let text = status(&db.url, dir.path(), false).stdout;
    assert!(
        text.contains("problem: the schema was changed by hand since version 1"),
        "{text}"
    );
    assert!(text.contains("added table public.by_hand"), "{text}");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn refuse_exits_32_with_nothing_applied_and_warn_goes_on() {
    let db = fresh_db("drift_on_drift");
    migrate(&db.url, files(false).path(), None).expect_code(0);
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    let dir = files(true);
    let out = migrate(&db.url, dir.path(), Some("refuse"));
    out.expect_code(32);
    assert!(
        out.stderr.contains("by_hand") || out.stdout.contains("by_hand"),
        "{out:?}"
    );
    assert!(!table_exists(&db, "orders"), "nothing applied");
    let out = migrate(&db.url, dir.path(), Some("bogus"));
    out.expect_code(20);
    assert!(out.stderr.contains("MIGRATE_ON_DRIFT") || out.stdout.contains("MIGRATE_ON_DRIFT"));
    let out = migrate(&db.url, dir.path(), Some("warn"));
    out.expect_code(0);
    let warned = out.events_named("schema.drift");
    assert_eq!(warned.len(), 1, "{out:?}");
    assert!(warned[0].to_string().contains("by_hand"), "{warned:?}");
    assert!(table_exists(&db, "orders"));
    // The run stored the new state, hand change included: no drift after it.
    assert_eq!(drift_of(&db.url, dir.path()), None);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn a_rollback_stores_the_new_state() {
    let db = fresh_db("drift_rollback");
    let dir = files(true);
    migrate(&db.url, dir.path(), None).expect_code(0);
    run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(["rollback", "--count", "1"]))
    .expect_code(0);
    assert!(!table_exists(&db, "orders"));
    assert_eq!(drift_of(&db.url, dir.path()), None);
    let stored = psql(&db.url, "SELECT schema_version FROM _migrations_lease");
    assert_eq!(stored.trim(), "1");
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    assert!(drift_of(&db.url, dir.path()).is_some());
}

#[test]
fn a_no_op_migrate_sends_no_snapshot_query() {
    let server = dressed_server();
    let d = server.plain("drift_noop");
    let dir = files(false);
    migrate(&d.url, dir.path(), None).expect_code(0);
    let snapshot_queries = |from: usize| {
        server.statements(&d.name)[from..]
            .iter()
            .filter(|l| {
                is_sent(l) && (l.text.contains("pg_get_") || l.text.contains("schema_text"))
            })
            .count()
    };
    let with_work = snapshot_queries(0);
    assert!(with_work > 0, "the run with work took a snapshot");
    let before = server.statements(&d.name).len();
    migrate(&d.url, dir.path(), None).expect_code(0);
    assert!(
        server.statements(&d.name).len() > before,
        "the no-op run was logged"
    );
    assert_eq!(snapshot_queries(before), 0);
}

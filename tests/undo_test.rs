//! `test [--json] [--force]` through the binary against a real server: a good set passes,
//! known-bad undos of each kind are named (one that fails, one that leaves an object behind,
//! one that restores a different default), an irreversible file is listed and not failed, an
//! empty undo is checked, a database holding objects is refused unless forced, and the
//! project sets in tests/fixtures/real run through it.

mod support;

use std::path::Path;

use support::*;

fn crdb_test(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["test"];
    all.extend(args);
    run(bin_at(&db.url, dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(&all))
}

const GOOD: &[(&str, &[u8])] = &[
    (
        "20240101000000_users.sql",
        b"CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'x');\n-- @UNDO\nDROP TABLE users;\n",
    ),
    (
        "20240102000000_age.sql",
        b"ALTER TABLE users ADD COLUMN age INT;\nCREATE INDEX users_age ON users (age);\n-- @UNDO\nDROP INDEX users_age;\nALTER TABLE users DROP COLUMN age;\n",
    ),
    (
        "20240103000000_default.sql",
        b"ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y';\n-- @UNDO\nALTER TABLE users ALTER COLUMN name SET DEFAULT 'x';\n",
    ),
];

#[test]
fn a_good_set_passes_and_leaves_the_forward_state() {
    let db = fresh_db("undo_good");
    let dir = dir_with(GOOD);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let verdicts: Vec<&str> = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| m["verdict"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(verdicts, ["ok", "ok", "ok"], "{report}");
    assert_eq!(report["failed"], 0);
    assert!(
        column_exists(&db, "users", "age"),
        "the forward state stays"
    );
    assert!(
        !table_exists(&db, "_migrations"),
        "test does not write the ledger"
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the expected differences are in its catalog's words"
)]
fn bad_undos_of_each_kind_are_named_in_one_run() {
    let db = fresh_db("undo_bad");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_fails.sql",
            b"CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE no_such_table;\n",
        ),
        (
            "20240103000000_leaves.sql",
            b"CREATE TABLE b (id INT);\nCREATE INDEX b_id ON b (id);\n-- @UNDO\nDROP INDEX b_id;\n",
        ),
        (
            "20240104000000_default.sql",
            b"ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y';\n-- @UNDO\nALTER TABLE users ALTER COLUMN name SET DEFAULT 'z';\n",
        ),
        (
            "20240105000000_irreversible.sql",
            b"CREATE TABLE c (id INT);\n",
        ),
        ("20240106000000_empty_undo.sql", b"CREATE TABLE d (id INT);\n-- @UNDO\n"),
        (
            "20240107000000_after.sql",
            b"CREATE TABLE e (id INT);\n-- @UNDO\nDROP TABLE e;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &[]);
    out.expect_code(33);
    let text = &out.stdout;
    for expected in [
        "20240101000000 20240101000000_users.sql: ok\n",
        "20240102000000 20240102000000_fails.sql: FAILED: undo failed at line 3: ",
        "20240103000000 20240103000000_leaves.sql: FAILED: undo does not restore the schema\n    added table public.b\n",
        "20240104000000 20240104000000_default.sql: FAILED: undo does not restore the schema\n    changed table public.users: column name: `text not null default 'x'::text` -> `text not null default 'z'::text`\n",
        "20240105000000 20240105000000_irreversible.sql: irreversible (no undo section)\n",
        "20240106000000 20240106000000_empty_undo.sql: FAILED: undo does not restore the schema\n    added table public.d\n",
        "20240107000000 20240107000000_after.sql: ok\n",
        "7 migration(s) checked in ",
        ": 4 failed, 1 irreversible\n",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The run went on from each forward state.
    for t in ["a", "b", "c", "d", "e"] {
        assert!(table_exists(&db, t), "{t}");
    }
}

#[test]
fn a_database_holding_objects_is_refused_unless_forced() {
    let db = fresh_db("undo_refuse");
    psql(&db.url, "CREATE TABLE precious (id INT)");
    let dir = dir_with(&GOOD[..1]);
    let out = crdb_test(&db, dir.path(), &[]);
    out.expect_code(20);
    assert!(
        out.stderr.contains("empty scratch database"),
        "{}",
        out.stderr
    );
    assert!(!table_exists(&db, "users"), "nothing ran");
    crdb_test(&db, dir.path(), &["--force"]).expect_code(0);
}

#[test]
fn a_non_transactional_undo_is_checked_and_the_forward_reapplied() {
    let db = fresh_db("undo_notx");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_idx.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n-- @UNDO\nDROP INDEX CONCURRENTLY users_name;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["migrations"][1]["transactional"], false, "{report}");
    assert_eq!(report["migrations"][1]["verdict"], "ok", "{report}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name'"
        ),
        1
    );
}

/// The project sets of tests/fixtures/real (and the larger import fixtures), imported and run
/// through `test`: every undo restores its schema, and the run stays well within seconds.
#[test]
fn the_fixture_projects_undo_cleanly() {
    let sets = [
        ("real", "golang-migrate"),
        ("real", "sqlx"),
        ("real", "goose"),
        ("real", "dbmate"),
        ("real", "flyway"),
        ("real", "diesel"),
        ("real", "pop"),
        ("import", "golang-migrate"),
        ("import", "goose"),
        ("import", "sqlx"),
    ];
    for (group, tool) in sets {
        let tmp = tempfile::tempdir().expect("tempdir");
        let into = tmp.path().join("migrations");
        run(bin()
            .args(["import", "--from", tool])
            .arg(support::fixtures::fixture(group, tool))
            .arg("--into")
            .arg(&into))
        .expect_code(0);
        let db = fresh_db(&format!("undo_{group}_{tool}"));
        let started = std::time::Instant::now();
        let out = crdb_test(&db, &into, &["--json"]);
        let took = started.elapsed();
        assert_eq!(
            out.code, 0,
            "{group}/{tool}:\n{}\n{}",
            out.stdout, out.stderr
        );
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let migrations = report["migrations"].as_array().expect("migrations");
        assert!(migrations.len() >= 2, "{group}/{tool}: {report}");
        assert!(
            migrations.iter().all(|m| m["verdict"] == "ok"),
            "{group}/{tool}: {report}"
        );
        assert!(
            took < std::time::Duration::from_secs(30),
            "{group}/{tool} took {took:?}"
        );
        eprintln!(
            "{group}/{tool}: {} migrations in {took:?}",
            migrations.len()
        );
    }
}

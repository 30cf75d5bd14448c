//! Expand and contract phases (`MIGRATE_PHASE`) against a real server: expand stops before the
//! first `@CONTRACT` migration and exits 0 saying how many wait, contract applies the rest,
//! and `plan` / `status` show the boundary in text and JSON.

mod support;

use serde_json::Value;
use support::fixtures::versions;
use support::{Output, TestDb, bin_at, dir_with, field, fresh_db, psql, run};

/// 1, 2 expand the schema; 3 is the deliberate break; 4 comes after the boundary.
fn rollout_set() -> tempfile::TempDir {
    dir_with(&[
        (
            "1_users.sql",
            b"CREATE TABLE users (id INT PRIMARY KEY, name TEXT, legacy_name TEXT);\n-- @UNDO\nDROP TABLE users;\n",
        ),
        (
            "2_display_name.sql",
            b"ALTER TABLE users ADD COLUMN display_name TEXT;\n-- @UNDO\nALTER TABLE users DROP COLUMN display_name;\n",
        ),
        (
            "3_drop_legacy_name.sql",
            b"-- @CONTRACT\nALTER TABLE users DROP COLUMN legacy_name;\n",
        ),
        (
            "4_users_name_index.sql",
            b"CREATE INDEX users_name ON users (name);\n-- @UNDO\nDROP INDEX users_name;\n",
        ),
    ])
}

fn crdb(db: &TestDb, dir: &std::path::Path, phase: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = bin_at(&db.url, dir);
    cmd.env("MIGRATE_WAIT_TIMEOUT", "20s").args(args);
    if let Some(p) = phase {
        cmd.env("MIGRATE_PHASE", p);
    }
    run(&mut cmd)
}

fn finished(out: &Output) -> Value {
    out.events_named("run.finished")
        .pop()
        .unwrap_or_else(|| panic!("no run.finished\n{}", out.stdout))
}

fn column_exists(db: &TestDb, column: &str) -> bool {
    psql(
        &db.url,
        &format!(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = '{column}'"
        ),
    ) == "1"
}

#[test]
fn expand_stops_before_the_first_contract_migration_and_contract_finishes() {
    let db = fresh_db("phases_expand");
    let dir = rollout_set();

    let out = crdb(&db, dir.path(), Some("expand"), &["migrate"]);
    out.expect_code(0);
    assert_eq!(versions(&db), "1,2");
    let f = finished(&out);
    assert_eq!(field(&f, "applied"), 2, "{f}");
    assert_eq!(field(&f, "contract_waiting"), 2, "{f}");
    assert_eq!(field(&f, "version"), 2, "{f}");
    assert!(column_exists(&db, "legacy_name"), "old pods still read it");

    // Again: nothing to do in the expand phase, still saying what waits.
    let again = crdb(&db, dir.path(), Some("expand"), &["migrate"]);
    again.expect_code(0);
    let f = finished(&again);
    assert_eq!(field(&f, "applied"), 0, "{f}");
    assert_eq!(field(&f, "contract_waiting"), 2, "{f}");
    assert_eq!(versions(&db), "1,2");

    // status shows the boundary (JSON and text).
    let st = crdb(&db, dir.path(), None, &["status", "--json"]);
    st.expect_code(0);
    let s: Value = serde_json::from_str(&st.stdout).expect("status json");
    assert_eq!(s["phase"]["boundary"], 3, "{s}");
    assert_eq!(s["phase"]["expand"], serde_json::json!([]), "{s}");
    assert_eq!(s["phase"]["contract"], serde_json::json!([3, 4]), "{s}");
    let contract_rows: Vec<i64> = s["migrations"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["contract"] == true)
                .filter_map(|r| r["version"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(contract_rows, vec![3]);
    let text = crdb(&db, dir.path(), None, &["status"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("phase boundary: version 3 is @CONTRACT")
            && text.stdout.contains("2 wait for MIGRATE_PHASE=contract"),
        "{}",
        text.stdout
    );

    // plan in the expand phase: nothing to apply, both held back behind the boundary.
    let plan = crdb(&db, dir.path(), Some("expand"), &["plan", "--json"]);
    plan.expect_code(0);
    let p: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    assert_eq!(p["phase"], "expand");
    assert_eq!(p["boundary"], 3);
    assert_eq!(p["steps"], serde_json::json!([]));
    let held: Vec<i64> = p["held_back"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["version"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(held, vec![3, 4]);
    assert_eq!(p["held_back"][0]["contract"], true);

    // The contract phase applies the rest.
    let out = crdb(&db, dir.path(), Some("contract"), &["migrate"]);
    out.expect_code(0);
    assert_eq!(versions(&db), "1,2,3,4");
    let f = finished(&out);
    assert_eq!(field(&f, "applied"), 2, "{f}");
    assert_eq!(field(&f, "contract_waiting"), 0, "{f}");
    assert!(!column_exists(&db, "legacy_name"));
}

#[test]
fn plan_shows_the_boundary_and_unset_phase_applies_everything() {
    let db = fresh_db("phases_unset");
    let dir = rollout_set();
    let plan = crdb(&db, dir.path(), None, &["plan"]);
    plan.expect_code(0);
    let lines: Vec<&str> = plan.stdout.lines().collect();
    let boundary = lines
        .iter()
        .position(|l| l.starts_with("--- phase boundary: 3 is @CONTRACT"))
        .unwrap_or_else(|| panic!("no boundary line\n{}", plan.stdout));
    assert!(
        lines[boundary - 1].starts_with("apply 2 "),
        "{}",
        plan.stdout
    );
    assert!(
        lines[boundary + 1].starts_with("apply 3 ") && lines[boundary + 1].contains("[contract]"),
        "{}",
        plan.stdout
    );
    // Expand as text: the boundary, then what waits.
    let expand = crdb(&db, dir.path(), Some("expand"), &["plan"]);
    expand.expect_code(0);
    assert!(
        expand
            .stdout
            .contains("target 2, 2 step(s) (MIGRATE_PHASE=expand)")
            && expand
                .stdout
                .contains("2 migration(s) wait for MIGRATE_PHASE=contract"),
        "{}",
        expand.stdout
    );

    let out = crdb(&db, dir.path(), None, &["migrate"]);
    out.expect_code(0);
    assert_eq!(versions(&db), "1,2,3,4");
    assert_eq!(field(&finished(&out), "contract_waiting"), 0);
}

#[test]
fn a_bad_phase_is_exit_20_naming_the_variable() {
    let db = fresh_db("phases_bad");
    let dir = rollout_set();
    let out = crdb(&db, dir.path(), Some("later"), &["migrate"]);
    out.expect_code(20);
    assert!(
        out.stderr.contains("MIGRATE_PHASE") && out.stderr.contains("expand or contract"),
        "{}",
        out.stderr
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = '_migrations'"
        ),
        "0"
    );
}

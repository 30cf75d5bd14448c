//! A fleet of schema targets hands a finished target's connections to the next: what each
//! target's migrations see must be what a fresh connection with its own URL gives.

mod support;

use std::collections::BTreeSet;

use support::fixtures::targets_file;
use support::*;

/// The binary over the targets of `file`, one at a time (so every target after the first
/// may reuse the connections of the one before).
fn fleet_cmd(url: &str, dir: &std::path::Path, file: &std::path::Path) -> std::process::Command {
    let mut cmd = support::fixtures::fleet_cmd(url, dir, file);
    cmd.env("MIGRATE_PARALLELISM", "1");
    cmd
}

/// A database with tenant schemas `names` (as given: unquoted, so folded to lower case) and
/// `public.seen`, where every migration writes what its session looks like.
fn tenants(tag: &str, names: &[&str]) -> TestDb {
    let db = fresh_db(tag);
    seen_table(&db);
    for t in names {
        psql(&db.url, &format!("CREATE SCHEMA {t}"));
    }
    db
}

fn seen_table(db: &TestDb) {
    psql(
        &db.url,
        "CREATE TABLE public.seen (tenant TEXT, version INT, pid INT, work_mem TEXT, \
           temp_table BOOL, prepared BOOL); CREATE SEQUENCE public.bad_pid;",
    );
}

/// Migrations 1..=n: each records its session (schema, backend pid, `work_mem`, whether a
/// temporary table or a prepared statement of an earlier migration is there), then changes it
/// — a setting, a temporary table, a prepared statement — and fails in schema `bad` (after
/// recording its pid in a sequence, which a rollback does not undo).
fn session_set(n: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        let body = format!(
            "INSERT INTO public.seen VALUES (current_schema(), {v}, pg_backend_pid(), \
               current_setting('work_mem'), to_regclass('pg_temp.leak_probe') IS NOT NULL, \
               EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'leak_{v}'));\n\
             SET work_mem = '7MB';\n\
             CREATE TEMP TABLE IF NOT EXISTS leak_probe (x INT);\n\
             PREPARE leak_{v} AS SELECT 1;\n\
             CREATE TABLE m_{v} (id INT);\n\
             SELECT CASE WHEN current_schema() = 'bad' \
               THEN setval('public.bad_pid', pg_backend_pid()) END;\n\
             DO $$ BEGIN IF current_schema() = 'bad' THEN RAISE EXCEPTION 'broken tenant'; \
               END IF; END $$;\n"
        );
        std::fs::write(dir.path().join(format!("{v}_m{v}.sql")), body).expect("write");
    }
    dir
}

/// `db`'s URL with `options=-c search_path={target}`: schema-per-tenant.
fn schema_url(db: &TestDb) -> String {
    format!("{}&options=-c%20search_path%3D{{target}}", db.url)
}

/// `public.seen` rows as `tenant:version:work_mem:temp_table:prepared`, in run order, and
/// the backend pid of each tenant's migration 1.
fn seen(db: &TestDb) -> (Vec<String>, Vec<(String, i64)>) {
    let rows = psql(
        &db.url,
        "SELECT coalesce(string_agg(tenant || ':' || version || ':' || work_mem || ':' || \
           temp_table || ':' || prepared || ':' || pid, ',' ORDER BY ctid), '') FROM public.seen",
    );
    let mut sessions = Vec::new();
    let mut pids = Vec::new();
    for r in rows.split(',').filter(|r| !r.is_empty()) {
        let (rest, pid) = r.rsplit_once(':').expect("row");
        if rest.contains(":1:") {
            pids.push((
                rest.split(':').next().unwrap_or("").to_string(),
                pid.parse().unwrap(),
            ));
        }
        sessions.push(rest.to_string());
    }
    (sessions, pids)
}

#[test]
fn reused_connections_give_each_target_a_fresh_session_in_its_own_schema() {
    let db = tenants("reuse_fresh", &["t0", "t1", "Tenant_X", "t2", "t3", "t4"]);
    let dir = session_set(2);
    let file = targets_file(&["t0", "t1", "Tenant_X", "t2", "t3", "t4"]);
    let fresh_work_mem = psql(&db.url, "SHOW work_mem");
    let out = run(&mut fleet_cmd(&schema_url(&db), dir.path(), file.path()));
    out.expect_code(0);
    let (sessions, pids) = seen(&db);
    // Each target's migrations ran once, in its own schema (an unquoted name folds to lower
    // case, as on a fresh connection); its first migration saw a fresh session; its second
    // saw what its first left (the same session, as a single run's).
    let mut expected = Vec::new();
    for t in ["t0", "t1", "tenant_x", "t2", "t3", "t4"] {
        expected.push(format!("{t}:1:{fresh_work_mem}:false:false"));
        expected.push(format!("{t}:2:7MB:true:false"));
    }
    assert_eq!(sessions, expected, "{}", out.stdout);
    // One worker slot: one migration connection served every target.
    let distinct: BTreeSet<i64> = pids.iter().map(|(_, p)| *p).collect();
    assert_eq!(pids.len(), 6);
    assert_eq!(distinct.len(), 1, "{pids:?}");
    // `db.ready` is logged for each new migration connection: one, for the first target.
    assert_eq!(out.events_named("db.ready").len(), 1, "{}", out.stdout);
    // A rerun: every target a no-op on the reused connections; nothing ran again.
    let again = run(&mut fleet_cmd(&schema_url(&db), dir.path(), file.path()));
    again.expect_code(0);
    assert_eq!(again.events_named("run.nothing_to_do").len(), 6);
    assert_eq!(again.events_named("db.ready").len(), 1, "{}", again.stdout);
    assert_eq!(seen(&db).0.len(), 12);
}

#[test]
fn a_missing_tenant_schema_is_refused_with_exit_20_naming_it_fresh_or_reused() {
    let db = tenants("reuse_missing", &["t0", "t1"]);
    let dir = session_set(1);
    // `nosuch` comes first (a new connection); `Gone` after t0 (t0's connection).
    let file = targets_file(&["nosuch", "t0", "Gone", "t1"]);
    let out = run(&mut fleet_cmd(&schema_url(&db), dir.path(), file.path()));
    out.expect_code(20);
    let all = format!("{}{}", out.stdout, out.stderr);
    for (target, schema) in [("nosuch", "nosuch"), ("Gone", "gone")] {
        assert!(
            all.contains(&format!("target {target}")) && all.contains(&format!("\\\"{schema}\\\"")),
            "{target}: {all}"
        );
    }
    let (sessions, _) = seen(&db);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let made = psql(
        &db.url,
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('nosuch', 'gone')",
    );
    assert_eq!(made, "0", "nothing was created for the missing schemas");
    let finished = out.events_named("fleet.finished");
    assert_eq!(
        field(&finished[0], "failed").as_u64(),
        Some(2),
        "{}",
        out.stdout
    );
    assert_eq!(field(&finished[0], "applied").as_u64(), Some(2));
}

#[test]
fn a_failed_targets_connection_is_not_reused_and_database_targets_mix_in() {
    let db = tenants("reuse_failed", &["t0", "bad", "t1", "t2"]);
    let other = fresh_db("reuse_other_db");
    seen_table(&other);
    let file = targets_file(&["t0", "bad", "t1", &other.url, "t2"]);
    let dir = session_set(1);
    let out = run(&mut fleet_cmd(&schema_url(&db), dir.path(), file.path()));
    out.expect_code(30);
    let (_, pids) = seen(&db);
    let tenants: Vec<&str> = pids.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tenants, ["t0", "t1", "t2"], "bad's migration rolled back");
    let bad_pid: i64 = psql(&db.url, "SELECT last_value FROM public.bad_pid")
        .parse()
        .unwrap();
    // bad took t0's connection; failing, it closed it: t1 had a new one, which t2 reused
    // (the database target in between has connections of its own).
    assert_eq!(pids[0].1, bad_pid, "bad reused t0's connection");
    assert_ne!(
        pids[1].1, bad_pid,
        "t1 must not get the failed target's connection"
    );
    assert_eq!(pids[2].1, pids[1].1, "t2 reused t1's connection");
    let (other_seen, other_pids) = seen(&other);
    assert_eq!(other_seen.len(), 1, "{other_seen:?}");
    assert_eq!(other_pids[0].0, "public");
    let finished = out.events_named("fleet.finished");
    assert_eq!(
        field(&finished[0], "failed").as_u64(),
        Some(1),
        "{}",
        out.stdout
    );
    assert_eq!(field(&finished[0], "applied").as_u64(), Some(4));
}

#[test]
fn status_over_schema_targets_reuses_connections_and_reports_each_schemas_own_state() {
    let db = tenants("reuse_status", &["t0", "t1", "t2"]);
    let dir = dir_with(&[
        (
            "1_a.sql",
            b"CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE a;\n",
        ),
        (
            "2_b.sql",
            b"CREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE b;\n",
        ),
    ]);
    let migrated = targets_file(&["t0", "t1"]);
    run(&mut fleet_cmd(
        &schema_url(&db),
        dir.path(),
        migrated.path(),
    ))
    .expect_code(0);
    psql(&db.url, "CREATE TABLE t1.by_hand (x INT)");
    // `nosuch` after t0: it gets t0's connection, is refused, and hands it on to t1.
    let file = targets_file(&["t0", "nosuch", "t1", "t2"]);
    let out = run(fleet_cmd(&schema_url(&db), dir.path(), file.path())
        .env("LOG_LEVEL", "info")
        .args(["status", "--json"]));
    out.expect_code(20);
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect("status json");
    let names: Vec<&str> = (0..4).filter_map(|i| all[i]["target"].as_str()).collect();
    assert_eq!(names, ["t0", "nosuch", "t1", "t2"], "{all}");
    assert_eq!(all[0]["current_version"], 2, "{all}");
    assert_eq!(all[0]["disagreements"], serde_json::json!([]), "{all}");
    assert_eq!(all[1]["exit_code"], 20, "{all}");
    assert!(
        all[1]["error"].as_str().unwrap_or("").contains("nosuch"),
        "{all}"
    );
    // t1's drift is its own: the table added by hand in t1, and nothing of t0's.
    assert_eq!(all[2]["current_version"], 2, "{all}");
    let drift = all[2]["disagreements"].to_string();
    assert!(
        drift.contains("schema_drift") && drift.contains("t1.by_hand"),
        "{all}"
    );
    assert_eq!(all[3]["current_version"], 0, "{all}");
    // One worker slot, one server session for all four targets (`status` logs to stderr).
    let ready = out
        .stderr
        .lines()
        .filter(|l| l.contains(r#""event":"db.ready""#));
    assert_eq!(ready.count(), 1, "{}", out.stderr);
}

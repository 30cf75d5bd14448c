//! A fleet is many runs: one process migrating many targets (databases, or schemas of one
//! database), each target a run of its own with its own ledger, lease and decisions.

mod support;

use std::time::Duration;

use crdb_migrate::{Config, Goal, Run};
use support::dressed::{Gate, add_job, dressed_server};
use support::fixtures::{self, fleet_cmd, targets_file};
use support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn users_set() -> tempfile::TempDir {
    dir_with(&[
        (
            "1_users.sql",
            b"CREATE TABLE users (id INT8 PRIMARY KEY);\n-- @UNDO\nDROP TABLE users;\n",
        ),
        (
            "2_email.sql",
            b"ALTER TABLE users ADD COLUMN email TEXT;\n-- @UNDO\nALTER TABLE users DROP COLUMN email;\n",
        ),
    ])
}

/// Two runs in one process against two CockroachDB-like databases: the first is a default
/// v26.1 whose `crdb_internal` refuses us (and has no `SHOW JOBS`), the second a v25.4 whose
/// `crdb_internal` is readable and lists a paused job on `users`. What the first learnt must
/// not silence the second's listing: it sees the job and refuses (32).
#[test]
fn two_runs_in_one_process_each_decide_for_themselves_how_to_list_jobs() {
    let server = dressed_server();
    let gated = server.fresh("fleet_gated", Gate::Revoked, true);
    let readable = server.fresh("fleet_readable", Gate::Readable, false);
    let dir = users_set();
    let rt = runtime();
    let run = |url: &str, goal| Run::new(Config::new(Some(url.into()), dir.path()), goal);
    let first = rt.block_on(run(&readable.url, Goal::Up(Some(1))).run());
    assert!(first.result.is_ok(), "{:?}", first.result);
    add_job(&readable.admin_url, 404, "paused", "users", 57, "postgres");

    let gated_run = rt.block_on(run(&gated.url, Goal::Up(None)).run());
    assert!(gated_run.result.is_ok(), "{:?}", gated_run.result);
    assert_eq!(gated_run.report.versions, vec![1, 2]);
    let readable_run = rt.block_on(run(&readable.url, Goal::Up(None)).run());
    let e = readable_run
        .result
        .expect_err("the paused job was not seen");
    assert_eq!(e.exit().code(), 32, "{e}");
    assert!(e.to_string().contains("SHOW JOB 404"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The binary over many targets
// ---------------------------------------------------------------------------------------------

/// A database holding `n` tenant schemas `t0..t{n-1}` and `public.effects`, the side-effect
/// table every migration writes its (schema, version) to.
fn tenants(tag: &str, n: usize) -> (TestDb, Vec<String>) {
    let db = fresh_db(tag);
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let mut sql = String::from("CREATE TABLE public.effects (tenant TEXT, version INT);\n");
    for t in &names {
        sql.push_str(&format!("CREATE SCHEMA {t};\n"));
    }
    psql(&db.url, &sql);
    (db, names)
}

/// Migrations 1..=n, each a table of its own in the tenant's schema and a row in
/// `public.effects`; `extra(v)` is added to migration v.
fn tenant_set(n: i64, extra: impl Fn(i64) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        let body = format!(
            "CREATE TABLE m_{v} (id INT);\n\
             INSERT INTO public.effects VALUES (current_schema(), {v});\n{}\n\
             -- @UNDO\nDROP TABLE m_{v};\n\
             DELETE FROM public.effects WHERE tenant = current_schema() AND version = {v};\n",
            extra(v)
        );
        std::fs::write(dir.path().join(format!("{v}_m{v}.sql")), body).expect("write");
    }
    dir
}

/// `db`'s URL with a password and `options=-c search_path={target}`: schema-per-tenant.
fn schema_url(db: &TestDb) -> String {
    format!(
        "{}&options=-c%20search_path%3D{{target}}",
        db.url.replacen(
            "postgresql://postgres@",
            "postgresql://postgres:s3cret-pw@",
            1
        )
    )
}

/// How many times each (tenant, version) ran: `tenant:version:count`, sorted.
fn effects(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(tenant || ':' || version || ':' || n, ',' ORDER BY tenant, version), '') \
           FROM (SELECT tenant, version, count(*) AS n FROM public.effects GROUP BY 1, 2) e",
    )
}

fn expected_effects(names: &[String], versions: i64) -> String {
    let mut names = names.to_vec();
    names.sort();
    let mut out = Vec::new();
    for t in &names {
        for v in 1..=versions {
            out.push(format!("{t}:{v}:1"));
        }
    }
    out.join(",")
}

fn termination(out_dir: &tempfile::TempDir) -> serde_json::Value {
    let text = std::fs::read_to_string(out_dir.path().join("termination")).expect("message");
    assert!(text.len() <= 4096, "{} bytes", text.len());
    serde_json::from_str(&text).expect("termination json")
}

#[test]
fn schema_per_tenant_targets_from_a_file_each_migrate_once_and_a_rerun_is_a_no_op() {
    let (db, names) = tenants("fleet_schemas", 5);
    let dir = tenant_set(3, |_| String::new());
    let mut lines: Vec<&str> = vec!["# tenants", ""];
    lines.extend(names.iter().map(|s| s.as_str()));
    lines.push("  ");
    let file = targets_file(&lines);
    let url = schema_url(&db);
    let term = tempfile::tempdir().expect("tempdir");
    let out = run(fleet_cmd(&url, dir.path(), file.path())
        .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")));
    out.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 3));
    // Each schema has its own ledger.
    for t in &names {
        let v = psql(
            &db.url,
            &format!("SELECT string_agg(version::text, ',' ORDER BY version) FROM {t}._migrations"),
        );
        assert_eq!(v, "1,2,3", "{t}");
    }
    let finished = out.events_named("fleet.finished");
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    assert_eq!(field(&finished[0], "applied").as_u64(), Some(5));
    assert_eq!(field(&finished[0], "total").as_u64(), Some(5));
    // Every event of a target's run names it, and no line holds the password.
    let applied = out.events_named("migration.applied");
    assert_eq!(applied.len(), 15, "{}", out.stdout);
    for e in &applied {
        let t = field(e, "target").as_str().unwrap_or("");
        assert!(names.iter().any(|n| n == t), "{e}");
    }
    assert!(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"));
    let message = termination(&term);
    assert_eq!(message["targets"]["applied"], 5, "{message}");
    assert_eq!(message["exit_code"], 0);

    // A rerun: every target at the goal, a no-op each.
    let again = run(&mut fleet_cmd(&url, dir.path(), file.path()));
    again.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 3));
    let finished = again.events_named("fleet.finished");
    assert_eq!(
        field(&finished[0], "up_to_date").as_u64(),
        Some(5),
        "{}",
        again.stdout
    );
    let nothing = again.events_named("run.nothing_to_do");
    assert_eq!(nothing.len(), 5);
    for e in &nothing {
        assert!(
            field(e, "target")
                .as_str()
                .is_some_and(|t| t.starts_with('t')),
            "{e}"
        );
        assert_eq!(field(e, "target_version").as_i64(), Some(3), "{e}");
    }

    // rollback over the fleet: each target undoes its newest migration.
    let back = run(fleet_cmd(&url, dir.path(), file.path()).args(["rollback", "--count", "1"]));
    back.expect_code(0);
    let undone = back.events_named("migration.rolled_back");
    assert_eq!(undone.len(), 5, "{}", back.stdout);
    assert_eq!(effects(&db), expected_effects(&names, 2));
}

#[test]
fn database_per_tenant_targets_from_a_query() {
    let tag = format!("fq{}", std::process::id());
    let names: Vec<String> = (0..3).map(|i| format!("{tag}_db{i}")).collect();
    let admin = server().maintenance_url();
    for n in &names {
        psql(&admin, &format!("CREATE DATABASE {n}"));
    }
    let url = server().admin_url("{target}");
    let query =
        format!("SELECT datname FROM pg_database WHERE datname LIKE '{tag}\\_db%' ORDER BY 1");
    let dir = fixtures::migrations(2, |_| String::new());
    for n in &names {
        psql(&server().admin_url(n), "CREATE TABLE effects (version INT)");
    }
    let out = run(bin_at(&url, dir.path())
        .env("MIGRATE_TARGETS_QUERY", &query)
        .env("MIGRATE_HOLDER", "fleet-test"));
    out.expect_code(0);
    for n in &names {
        let got = psql(
            &server().admin_url(n),
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM effects",
        );
        assert_eq!(got, "1,2", "{n}");
    }
    let started = out.events_named("fleet.started");
    assert_eq!(
        field(&started[0], "targets").as_u64(),
        Some(3),
        "{}",
        out.stdout
    );

    // A NULL row is refused naming its row (NULL sorts last: row 4), before any target is
    // touched.
    let nulls = format!("SELECT NULL UNION ALL {query}");
    let out = run(bin_at(&url, dir.path()).env("MIGRATE_TARGETS_QUERY", &nulls));
    out.expect_code(20);
    assert!(
        out.stderr.contains("MIGRATE_TARGETS_QUERY row 4"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_lines_and_duplicates_are_refused_with_exit_20_naming_the_line_and_nothing_changes() {
    let (db, _) = tenants("fleet_bad_lines", 2);
    let dir = tenant_set(1, |_| String::new());
    let url = schema_url(&db);
    for (lines, says) in [
        (vec!["t0", "t1", "t1;drop"], "line 3"),
        (vec!["t0", "# c", "t1", "t0"], "lines 1 and 4"),
        (vec!["t0", "postgres://x:y@h/d?nope=1"], "line 2"),
        (vec!["t0", "../t1"], "line 2"),
    ] {
        let file = targets_file(&lines);
        let out = run(&mut fleet_cmd(&url, dir.path(), file.path()));
        out.expect_code(20);
        let path = file.path().display().to_string();
        assert!(
            out.stderr.contains(&format!("{path} {says}")),
            "{says}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("s3cret-pw") && !out.stdout.contains("s3cret-pw"));
        assert_eq!(effects(&db), "", "{says}: nothing may run");
    }
    // {target} with no targets: refused, not a database named "{target}".
    let out = run(bin_at(&url, dir.path()).arg("migrate"));
    out.expect_code(20);
    assert!(
        out.stderr.contains("DATABASE_URL: holds {target}"),
        "{}",
        out.stderr
    );
    // A file and a query together: both named.
    let file = targets_file(&["t0"]);
    let out =
        run(fleet_cmd(&url, dir.path(), file.path()).env("MIGRATE_TARGETS_QUERY", "SELECT 1"));
    out.expect_code(20);
    assert!(
        out.stderr
            .contains("MIGRATE_TARGETS_FILE and MIGRATE_TARGETS_QUERY"),
        "{}",
        out.stderr
    );
    // --targets on the command line is the same file.
    let file = targets_file(&["t0", "t 1"]);
    let out = run(bin_at(&url, dir.path())
        .arg("migrate")
        .arg("--targets")
        .arg(file.path()));
    out.expect_code(20);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

/// Held while the test's transaction holds advisory lock 42: each migration takes it shared
/// (until it commits) and counts the runs holding it with it, by advancing sequence
/// `public.conc_<count>`. A sequence, not a row: `nextval` survives the rollback of a
/// transaction replayed after a serialization failure (concurrent targets writing the shared
/// `public.effects` may meet one), so every count seen stays seen. `pg_locks` lists the locks
/// of every database of the server, and other tests here take lock 42 in theirs at the same
/// time, so each count is of this database's locks only.
const SHARED_LOCK: &str = "SELECT pg_advisory_xact_lock_shared(42);\n\
     SELECT nextval(('public.conc_' || (SELECT count(*) FROM pg_locks \
      WHERE locktype = 'advisory' AND objid = 42 AND mode = 'ShareLock' AND granted \
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())))::regclass);";

/// The sequences [`SHARED_LOCK`] advances.
const CONCURRENCY_PROBE: &str = "CREATE SEQUENCE public.conc_1; CREATE SEQUENCE public.conc_2; \
     CREATE SEQUENCE public.conc_3; CREATE SEQUENCE public.conc_4;";

/// The most runs [`SHARED_LOCK`] saw holding the lock together.
fn most_at_once(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT max(substr(sequencename, 6)::int) FROM pg_sequences \
          WHERE schemaname = 'public' AND sequencename LIKE 'conc\\_%' AND last_value IS NOT NULL",
    )
}

fn waiting_on_42(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND NOT granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

#[test]
fn no_more_targets_than_the_parallelism_are_in_flight() {
    let (db, names) = tenants("fleet_parallel", 6);
    psql(&db.url, CONCURRENCY_PROBE);
    let dir = tenant_set(1, |_| SHARED_LOCK.to_string());
    let lines: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let file = targets_file(&lines);
    let mut blocker = OpenTx::begin(&db.url, "SELECT pg_advisory_xact_lock(42)");
    let bg = Background::spawn(
        fleet_cmd(&schema_url(&db), dir.path(), file.path())
            .env("MIGRATE_PARALLELISM", "2")
            .env("MIGRATE_PROGRESS_INTERVAL", "200ms")
            .env("MIGRATE_LEASE_TTL", "3s"),
    );
    wait_until(
        Duration::from_secs(30),
        "two waiting, progress, heartbeats",
        || {
            waiting_on_42(&db) == 2
                && bg.has_logged("fleet.progress")
                && bg.has_logged("lease.renewed")
        },
    );
    blocker.commit();
    let out = bg.wait(Duration::from_secs(60));
    out.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 1));
    // The heartbeat runs in a task of its own: its events name their target too.
    for e in out.events_named("lease.renewed") {
        let t = field(&e, "target").as_str().unwrap_or("");
        assert!(names.iter().any(|n| n == t), "{e}");
    }
    // Never more than two at once, and two did run together.
    assert_eq!(most_at_once(&db), "2", "{}", out.stdout);
}

#[test]
fn three_shards_at_once_migrate_every_target_exactly_once() {
    let (db, names) = tenants("fleet_shards", 12);
    let dir = tenant_set(2, |_| String::new());
    let lines: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let file = targets_file(&lines);
    let url = schema_url(&db);
    let pods: Vec<Background> = (0..3)
        .map(|i| {
            Background::spawn(
                fleet_cmd(&url, dir.path(), file.path())
                    .env("MIGRATE_SHARDS", "3")
                    .env("JOB_COMPLETION_INDEX", i.to_string())
                    .env("MIGRATE_HOLDER", format!("pod-{i}")),
            )
        })
        .collect();
    let mut shares = 0;
    for pod in pods {
        let out = pod.wait(Duration::from_secs(60));
        out.expect_code(0);
        let started = out.events_named("fleet.started");
        assert_eq!(field(&started[0], "listed").as_u64(), Some(12));
        shares += field(&started[0], "targets").as_u64().unwrap_or(0);
    }
    assert_eq!(shares, 12);
    assert_eq!(effects(&db), expected_effects(&names, 2));
    // A shard index out of range is refused naming it.
    let out = run(fleet_cmd(&url, dir.path(), file.path())
        .env("MIGRATE_SHARDS", "3")
        .env("JOB_COMPLETION_INDEX", "3"));
    out.expect_code(20);
    assert!(
        out.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        out.stderr
    );
}

/// Fails (exit 30) in schema `bad` only.
const FAILS_IN_BAD: &str =
    "DO $$ BEGIN IF current_schema() = 'bad' THEN RAISE EXCEPTION 'broken tenant'; END IF; END $$;";

#[test]
fn a_failed_canary_leaves_the_rest_not_started() {
    let (db, names) = tenants("fleet_canary", 4);
    psql(&db.url, "CREATE SCHEMA bad");
    let dir = tenant_set(1, |_| FAILS_IN_BAD.to_string());
    let mut lines = vec!["bad"];
    lines.extend(names.iter().map(|s| s.as_str()));
    let file = targets_file(&lines);
    let term = tempfile::tempdir().expect("tempdir");
    let out = run(fleet_cmd(&schema_url(&db), dir.path(), file.path())
        .env("MIGRATE_CANARY_TARGETS", "1")
        .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")));
    out.expect_code(30);
    assert_eq!(effects(&db), "");
    let message = termination(&term);
    assert_eq!(message["targets"]["failed"], 1, "{message}");
    assert_eq!(message["targets"]["not_started"], 4, "{message}");
    assert_eq!(message["failed_targets"][0]["target"], "bad", "{message}");
    assert_eq!(message["failed_targets"][0]["exit_code"], 30, "{message}");
    let failed = out.events_named("fleet.target_finished");
    assert_eq!(failed.len(), 1, "{}", out.stdout);
    assert_eq!(field(&failed[0], "target").as_str(), Some("bad"));

    // Canaries that pass let the rest go.
    let file = targets_file(&lines[1..]);
    let out = run(
        fleet_cmd(&schema_url(&db), dir.path(), file.path()).env("MIGRATE_CANARY_TARGETS", "2")
    );
    out.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 1));
}

#[test]
fn after_max_failures_no_new_target_starts_and_the_running_ones_finish() {
    let (db, names) = tenants("fleet_budget", 5);
    psql(&db.url, &format!("CREATE SCHEMA bad; {CONCURRENCY_PROBE}"));
    // `bad` fails at once; t0 runs beside it, held on the lock until `bad` has failed.
    let dir = tenant_set(1, |_| format!("{FAILS_IN_BAD}\n{SHARED_LOCK}"));
    let mut lines = vec!["bad"];
    lines.extend(names.iter().map(|s| s.as_str()));
    let file = targets_file(&lines);
    let mut blocker = OpenTx::begin(&db.url, "SELECT pg_advisory_xact_lock(42)");
    let bg = Background::spawn(
        fleet_cmd(&schema_url(&db), dir.path(), file.path())
            .env("MIGRATE_PARALLELISM", "2")
            .env("MIGRATE_MAX_FAILURES", "1"),
    );
    wait_until(Duration::from_secs(30), "bad failed and t0 waiting", || {
        bg.has_logged("fleet.target_finished") && waiting_on_42(&db) == 1
    });
    // A target's connections close when its run ends: only t0's two (migration, lease) are left.
    let ours = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crdb-migrate' \
           AND datname = '{}'",
        db.name
    );
    wait_until(Duration::from_secs(10), "bad's connections closed", || {
        count(&db, &ours) == 2
    });
    blocker.commit();
    let out = bg.wait(Duration::from_secs(60));
    out.expect_code(30);
    assert_eq!(effects(&db), "t0:1:1", "t0 was running: it finished");
    let finished = out.events_named("fleet.finished");
    assert_eq!(
        field(&finished[0], "failed").as_u64(),
        Some(1),
        "{}",
        out.stdout
    );
    assert_eq!(field(&finished[0], "applied").as_u64(), Some(1));
    assert_eq!(field(&finished[0], "not_started").as_u64(), Some(4));
}

/// Targets broken in different ways, each a database of the shared server (its name) but for
/// `unreachable` (a URL with a password to a closed port): `ok`, `badsql` (no `effects` table:
/// migration 1 fails, 30), `drift` (version 1 applied, its checksum edited: 32), `missing`
/// (no such database: 20); `dir` holds migrations 1 and 2.
struct Broken {
    ok: String,
    badsql: String,
    drift: String,
    missing: String,
    unreachable: String,
    dir: tempfile::TempDir,
}

fn broken(tag: &str) -> Broken {
    let tag = format!("{tag}{}", std::process::id());
    let db = |s: &str| format!("{tag}_{s}");
    let admin = server().maintenance_url();
    for s in ["ok", "badsql", "drift"] {
        psql(&admin, &format!("CREATE DATABASE {}", db(s)));
    }
    for s in ["ok", "drift"] {
        psql(
            &server().admin_url(&db(s)),
            "CREATE TABLE effects (version INT)",
        );
    }
    let dir = fixtures::migrations(2, |_| String::new());
    let drift = server().admin_url(&db("drift"));
    run(bin_at(&drift, dir.path()).args(["migrate", "--target", "1"])).expect_code(0);
    psql(&drift, "UPDATE _migrations SET checksum = 'edited'");
    Broken {
        ok: db("ok"),
        badsql: db("badsql"),
        drift: db("drift"),
        missing: db("missing"),
        unreachable: format!(
            "postgresql://postgres:pw@127.0.0.1:{}/x?sslmode=disable",
            free_port()
        ),
        dir,
    }
}

#[test]
fn targets_broken_in_different_ways_each_fail_with_their_own_code() {
    let b = broken("fb");
    let (ok, badsql, drift, missing, unreachable) =
        (&b.ok, &b.badsql, &b.drift, &b.missing, &b.unreachable);
    let dir = &b.dir;
    let file = targets_file(&[unreachable, ok, badsql, drift, missing]);
    let term = tempfile::tempdir().expect("tempdir");
    let out = run(
        fleet_cmd(&server().admin_url("{target}"), dir.path(), file.path())
            .env("MIGRATE_WAIT_TIMEOUT", "1s")
            .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")),
    );
    // The first permanent failure in list order (bad SQL, line 3) is the fleet's.
    out.expect_code(30);
    let message = termination(&term);
    assert_eq!(message["targets"]["applied"], 1, "{message}");
    assert_eq!(message["targets"]["failed"], 4, "{message}");
    let codes: Vec<(String, i64)> = message["failed_targets"]
        .as_array()
        .expect("failed_targets")
        .iter()
        .map(|f| {
            (
                f["target"].as_str().unwrap_or("").to_string(),
                f["exit_code"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let shown = |u: &str| {
        u.split('@')
            .nth(1)
            .and_then(|r| r.split('?').next())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        codes,
        vec![
            (shown(unreachable), 10),
            (badsql.clone(), 30),
            (drift.clone(), 32),
            (missing.clone(), 20)
        ],
        "{message}"
    );
    assert!(!out.stdout.contains(":pw@") && !out.stderr.contains(":pw@"));
    let finished = out.events_named("fleet.finished");
    let listed = field(&finished[0], "failed_targets");
    assert_eq!(listed[2]["target"], drift.as_str(), "{listed}");
    assert_eq!(listed[2]["exit_code"], 32, "{listed}");
    // Each failure is logged in its target's name.
    for e in out.events_named("fleet.target_finished") {
        assert!(field(&e, "target").as_str().is_some(), "{e}");
    }

    // Only transient failures: the first transient code.
    let file = targets_file(&[ok, unreachable]);
    let out = run(
        fleet_cmd(&server().admin_url("{target}"), dir.path(), file.path())
            .env("MIGRATE_WAIT_TIMEOUT", "1s"),
    );
    out.expect_code(10);
}

#[test]
fn sigterm_stops_the_running_targets_as_a_run_is_stopped_and_starts_no_other() {
    let (db, names) = tenants("fleet_sigterm", 3);
    psql(&db.url, CONCURRENCY_PROBE);
    let dir = tenant_set(1, |_| SHARED_LOCK.to_string());
    let lines: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let file = targets_file(&lines);
    let mut blocker = OpenTx::begin(&db.url, "SELECT pg_advisory_xact_lock(42)");
    let term = tempfile::tempdir().expect("tempdir");
    let bg = Background::spawn(
        fleet_cmd(&schema_url(&db), dir.path(), file.path())
            .env("MIGRATE_PARALLELISM", "1")
            .env("MIGRATE_SHUTDOWN_GRACE", "1s")
            .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")),
    );
    wait_until(Duration::from_secs(30), "t0 waiting on the lock", || {
        waiting_on_42(&db) == 1
    });
    bg.signal("TERM");
    let out = bg.wait(Duration::from_secs(30));
    out.expect_code(143);
    // The abandoned statement was cancelled: nothing waits on the lock any more.
    assert_eq!(waiting_on_42(&db), 0);
    blocker.commit();
    assert_eq!(effects(&db), "");
    let message = termination(&term);
    assert_eq!(message["targets"]["not_started"], 2, "{message}");
    assert_eq!(message["targets"]["failed"], 1, "{message}");
    assert_eq!(message["failed_targets"][0]["exit_code"], 143, "{message}");
}

#[test]
fn the_termination_message_fits_in_4096_bytes_however_many_targets_fail() {
    let db = fresh_db("fleet_many_failed");
    let dir = tenant_set(1, |_| String::new());
    // Forty long names of schemas that do not exist: each run fails (nowhere to create its
    // ledger).
    let names: Vec<String> = (0..40)
        .map(|i| format!("{}{i:02}", "n".repeat(60)))
        .collect();
    let lines: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let file = targets_file(&lines);
    let term = tempfile::tempdir().expect("tempdir");
    let out = run(fleet_cmd(&schema_url(&db), dir.path(), file.path())
        .env("MIGRATE_PARALLELISM", "8")
        .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")));
    assert_ne!(out.code, 0, "{}", out.stdout);
    let message = termination(&term);
    assert_eq!(message["targets"]["failed"], 40, "{message}");
    let listed = message["failed_targets"].as_array().map_or(0, Vec::len);
    assert!(listed > 0, "{message}");
    assert_eq!(
        message["more_failed"].as_u64(),
        Some(40 - listed as u64),
        "{message}"
    );
    assert_eq!(message["failed_targets"][0]["target"], names[0].as_str());
}

#[test]
fn status_and_plan_over_targets_give_one_entry_per_target() {
    let b = broken("fs");
    let (ok, badsql, drift, missing) = (&b.ok, &b.badsql, &b.drift, &b.missing);
    let dir = &b.dir;
    run(bin_at(&server().admin_url(ok), dir.path()).arg("migrate")).expect_code(0);
    // status over the same targets: one line each, and the JSON array.
    let file = targets_file(&[ok, drift, missing]);
    let out =
        run(fleet_cmd(&server().admin_url("{target}"), dir.path(), file.path()).arg("status"));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].starts_with(ok.as_str()) && lines[0].contains("up_to_date"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(drift.as_str()) && lines[1].contains("disagrees"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(missing.as_str()) && lines[2].contains("error"),
        "{}",
        lines[2]
    );
    out.expect_code(20);
    let out = run(
        fleet_cmd(&server().admin_url("{target}"), dir.path(), file.path())
            .args(["status", "--json"]),
    );
    let all: serde_json::Value = serde_json::from_str(&out.stdout).expect("status json");
    assert_eq!(all[0]["target"], ok.as_str(), "{all}");
    assert_eq!(all[0]["current_version"], 2, "{all}");
    assert_eq!(all[1]["target"], drift.as_str());
    assert_eq!(all[2]["exit_code"], 20, "{all}");

    // plan over targets: each target's steps.
    let file = targets_file(&[ok, badsql]);
    let out = run(
        fleet_cmd(&server().admin_url("{target}"), dir.path(), file.path())
            .args(["plan", "--json"]),
    );
    out.expect_code(0);
    let plans: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan json");
    assert_eq!(plans[0]["target"], ok.as_str(), "{plans}");
    assert_eq!(plans[1]["target"], badsql.as_str(), "{plans}");
    assert_eq!(
        plans[1]["steps"].as_array().map(Vec::len),
        Some(2),
        "{plans}"
    );
}

#[test]
fn the_library_runs_a_fleet_and_folds_its_outcomes() {
    let (db, names) = tenants("fleet_library", 3);
    let dir = tenant_set(2, |_| String::new());
    let lines: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let file = targets_file(&lines);
    let mut config = Config::new(Some(schema_url(&db)), dir.path());
    config.fleet.targets = Some(crdb_migrate::TargetSource::File(file.path().into()));
    config.fleet.parallelism = 2;
    let rt = runtime();
    let fleet = rt
        .block_on(crdb_migrate::Fleet::new(
            config,
            Goal::Up(None),
            crdb_migrate::Stop::default(),
        ))
        .expect("targets");
    let shown: Vec<&str> = fleet.targets().iter().map(|t| t.name()).collect();
    assert_eq!(shown, lines);
    let outcome = rt.block_on(fleet.run());
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(
        (outcome.summary.applied, outcome.summary.migrations),
        (3, 6)
    );
    assert_eq!(effects(&db), expected_effects(&names, 2));
}

//! Through the real binary: `migration.progress` while a long statement
//! runs (PostgreSQL's `pg_stat_progress_create_index` read on the lease's connection), in JSON
//! and in text, and CockroachDB schema-change jobs that outlive their client (`job.found`,
//! exit 32 on a paused job on a table of the migration, `status --json`'s `jobs`).
//!
//! The index-build tests need PostgreSQL (they read its progress views); the job tests need a
//! real CockroachDB (`cockroach` on PATH): each is ignored, with its reason, otherwise.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Rows of the table the index build reads. Measured by hand on this 2-core machine
/// (PostgreSQL 15): about 4 s to generate, 5 s for the index below when the machine is
/// quiet, 10 s when other builds load it; progress is logged every second.
const ROWS: i64 = 2_000_000;

/// The index the migrations build: an expression (md5 per row) and a wide text key, so the
/// scan and the sort both take seconds.
const INDEX: &str =
    "CREATE INDEX big_md5 ON big (md5(payload), payload);\n-- @UNDO\nDROP INDEX big_md5;\n";

fn big_table(db: &TestDb) {
    psql(
        &db.url,
        &format!(
            "CREATE TABLE big AS SELECT g AS id, ((g::int8 * 7919) % 1000003)::text || repeat('x', 60) AS payload \
             FROM generate_series(1, {ROWS}) g"
        ),
    );
}

fn migrate(db: &TestDb, dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = bin_at(&db.url, dir);
    cmd.env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_HOLDER", "long-migrations-test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd.args(args))
}

fn num(e: &Value, name: &str) -> Option<i64> {
    field(e, name).as_i64()
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: reads pg_stat_progress_create_index"
)]
fn index_build_logs_progress_with_phase_and_counts_in_json_and_text() {
    let db = fresh_db("progress_index");
    big_table(&db);
    let text_index = INDEX.replace("big_md5", "big_md5_text");
    let dir = dir_with(&[
        ("1_index_json.sql", INDEX.as_bytes()),
        ("2_index_text.sql", text_index.as_bytes()),
    ]);

    // JSON: at least two progress events naming the version, statement 1, a phase and counts.
    let json = migrate(
        &db,
        dir.path(),
        &[("MIGRATE_PROGRESS_INTERVAL", "1s")],
        &["migrate", "--target", "1"],
    );
    json.expect_code(0);
    let events = json.events_named("migration.progress");
    let counted: Vec<&Value> = events
        .iter()
        .filter(|e| {
            field(e, "phase").as_str().is_some_and(|p| !p.is_empty())
                && num(e, "done").is_some()
                && num(e, "total").is_some_and(|t| t > 0)
        })
        .collect();
    assert!(
        counted.len() >= 2,
        "expected two progress events with phase and counts, got {events:#?}\n{}",
        json.stdout
    );
    for e in &counted {
        assert_eq!(num(e, "version"), Some(1), "{e}");
        assert_eq!(num(e, "statement"), Some(1), "{e}");
        assert_eq!(field(e, "command").as_str(), Some("CREATE INDEX"), "{e}");
        assert!(num(e, "elapsed_ms").is_some_and(|ms| ms >= 900), "{e}");
        let unit = field(e, "unit").as_str().unwrap_or("");
        assert!(["blocks", "tuples"].contains(&unit), "{e}");
        let message = field(e, "message").as_str().unwrap_or("");
        assert!(message.contains("% (") && message.contains(unit), "{e}");
    }
    // Elapsed time grows from one event to the next.
    let elapsed: Vec<i64> = events.iter().filter_map(|e| num(e, "elapsed_ms")).collect();
    assert!(elapsed.windows(2).all(|w| w[0] < w[1]), "{elapsed:?}");

    // Text: the short progress line is in the log.
    let text = migrate(
        &db,
        dir.path(),
        &[("MIGRATE_PROGRESS_INTERVAL", "1s"), ("LOG_FORMAT", "text")],
        &["migrate"],
    );
    text.expect_code(0);
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.contains("migration.progress") && l.contains("migration 2: "))
        .collect();
    let with_counts = lines
        .iter()
        .filter(|l| l.contains("% (") && (l.contains(" blocks)") || l.contains(" tuples)")))
        .count();
    assert!(
        with_counts >= 2,
        "expected two text progress lines with counts, got:\n{}",
        text.stdout
    );
}

#[test]
fn a_long_statement_without_progress_views_logs_elapsed_time_and_zero_turns_it_off() {
    // pg_sleep exists on both servers; nothing reports progress for it.
    let db = fresh_db("progress_sleep");
    let dir = dir_with(&[
        (
            "1_sleep.sql",
            b"SELECT 1;\nSELECT pg_sleep(2.5);\n-- @UNDO\nSELECT 1;\n",
        ),
        (
            "2_sleep_alone.sql",
            b"-- @NO_TRANSACTION\nSELECT 1;\nSELECT 2;\nSELECT pg_sleep(2);\n-- @UNDO\nSELECT 1;\n",
        ),
        (
            "3_sleep_again.sql",
            b"SELECT pg_sleep(1.5);\n-- @UNDO\nSELECT 1;\n",
        ),
    ]);
    let on = migrate(
        &db,
        dir.path(),
        &[("MIGRATE_PROGRESS_INTERVAL", "500ms")],
        &["migrate", "--target", "2"],
    );
    on.expect_code(0);
    let events = on.events_named("migration.progress");
    // Transactional: statement 2 of the flight; no-transaction: statement 3, on its own.
    for (version, statement) in [(1, 2), (2, 3)] {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| num(e, "version") == Some(version))
            .collect();
        assert!(mine.len() >= 2, "version {version}: {}", on.stdout);
        for e in mine {
            assert_eq!(num(e, "statement"), Some(statement), "{e}");
            assert!(num(e, "elapsed_ms").is_some(), "{e}");
            assert!(field(e, "phase").is_null(), "nothing to sample: {e}");
        }
    }

    let off = migrate(
        &db,
        dir.path(),
        &[("MIGRATE_PROGRESS_INTERVAL", "0")],
        &["migrate"],
    );
    off.expect_code(0);
    assert!(off.has_event("migration.applied"), "{}", off.stdout);
    assert!(!off.has_event("migration.progress"), "{}", off.stdout);
}

#[test]
fn a_bad_progress_interval_is_exit_20_naming_the_variable() {
    let db = fresh_db("progress_bad");
    let dir = dir_with(&[("1_noop.sql", b"SELECT 1;\n")]);
    for (name, value) in [
        ("MIGRATE_PROGRESS_INTERVAL", "soon"),
        ("MIGRATE_JOB_WAIT_TIMEOUT", "-1s"),
    ] {
        let out = migrate(&db, dir.path(), &[(name, value)], &["migrate"]);
        out.expect_code(20);
        assert!(
            out.stdout.contains(name) || out.stderr.contains(name),
            "{name}: {}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: reads pg_stat_progress_create_index"
)]
fn status_json_carries_an_empty_jobs_array_on_postgres() {
    let db = fresh_db("jobs_status_pg");
    let dir = dir_with(&[("1_t.sql", b"CREATE TABLE t (id INT PRIMARY KEY);\n")]);
    migrate(&db, dir.path(), &[], &["migrate"]).expect_code(0);
    let out = migrate(&db, dir.path(), &[], &["status", "--json"]);
    out.expect_code(0);
    let status: Value = serde_json::from_str(out.stdout.trim()).expect("status --json is JSON");
    assert_eq!(status["jobs"], serde_json::json!([]), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------
// CockroachDB: a schema-change job that outlives its client
// ---------------------------------------------------------------------------------------------

/// Starts an index build on `big` from a `psql` that is left running, waits for its job to
/// run, pauses it, and returns the job id once CockroachDB says it is paused.
fn paused_index_job(db: &TestDb) -> i64 {
    let mut client = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-c",
            "CREATE INDEX big_payload ON big (payload)",
            &db.url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn psql for the index build");
    let find = "SELECT job_id FROM [SHOW JOBS] WHERE job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') \
                AND status = 'running' AND description LIKE '%big_payload%' ORDER BY created DESC LIMIT 1";
    let mut id = String::new();
    wait_until(
        Duration::from_secs(60),
        "the index build's job to run",
        || {
            id = psql(&db.url, find);
            !id.is_empty()
        },
    );
    psql(&db.url, &format!("PAUSE JOB {id}"));
    wait_until(Duration::from_secs(60), "the job to be paused", || {
        psql(&db.url, &format!("SELECT status FROM [SHOW JOB {id}]")) == "paused"
    });
    // The client sees its statement fail (the job paused); the job stays.
    let _ = client.kill();
    let _ = client.wait();
    id.parse().expect("job id is an integer")
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "cockroach"),
    ignore = "needs CockroachDB: its schema-change jobs"
)]
fn a_paused_job_is_found_and_blocks_only_a_migration_on_its_table() {
    let db = fresh_db("jobs_paused");
    psql(
        &db.url,
        "CREATE TABLE big AS SELECT g AS id, repeat(g::STRING, 20) AS payload FROM generate_series(1, 300000) g; \
         CREATE TABLE other (id INT PRIMARY KEY)",
    );
    let id = paused_index_job(&db);

    // Not on its table: reported, then applied.
    let dir = dir_with(&[(
        "1_other.sql",
        b"ALTER TABLE other ADD COLUMN note STRING;\n",
    )]);
    let out = migrate(&db, dir.path(), &[], &["migrate"]);
    out.expect_code(0);
    let found = out.events_named("job.found");
    assert!(
        found
            .iter()
            .any(|e| num(e, "job_id") == Some(id) && field(e, "status").as_str() == Some("paused")),
        "{}",
        out.stdout
    );

    // `status --json` lists it.
    let status = migrate(&db, dir.path(), &[], &["status", "--json"]);
    status.expect_code(0);
    let v: Value = serde_json::from_str(status.stdout.trim()).expect("status --json is JSON");
    let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
    assert!(
        jobs.iter().any(|j| j["id"].as_i64() == Some(id)),
        "{}",
        status.stdout
    );

    // On its table: exit 32 naming the job and `SHOW JOB <id>`, nothing applied.
    std::fs::write(
        dir.path().join("2_big.sql"),
        "ALTER TABLE big ADD COLUMN note STRING;\n",
    )
    .expect("write migration");
    let out = migrate(&db, dir.path(), &[], &["migrate"]);
    out.expect_code(32);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&format!("SHOW JOB {id}")), "{all}");
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM _migrations WHERE version = 2"
        ),
        "0"
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "cockroach"),
    ignore = "needs CockroachDB: its schema-change jobs"
)]
fn a_running_job_is_waited_for_and_the_wait_is_bounded() {
    let db = fresh_db("jobs_wait");
    psql(
        &db.url,
        "CREATE TABLE big AS SELECT g AS id, repeat(g::STRING, 20) AS payload FROM generate_series(1, 300000) g",
    );
    let id = paused_index_job(&db);
    let dir = dir_with(&[("1_t.sql", b"CREATE TABLE t (id INT PRIMARY KEY);\n")]);
    // Resumed, it runs again: a short bound gives up with exit 11 naming the job...
    psql(&db.url, &format!("RESUME JOB {id}"));
    let out = migrate(
        &db,
        dir.path(),
        &[("MIGRATE_JOB_WAIT_TIMEOUT", "1ms")],
        &["migrate"],
    );
    if out.code == 0 {
        eprintln!("note: job {id} finished before the bounded wait could be observed");
    } else {
        out.expect_code(11);
        assert!(format!("{}{}", out.stdout, out.stderr).contains(&id.to_string()));
    }
    // ...and the default bound waits for it, then applies.
    let out = migrate(&db, dir.path(), &[], &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        psql(&db.url, &format!("SELECT status FROM [SHOW JOB {id}]")),
        "succeeded"
    );
}

//! Per-file settings against a real PostgreSQL: `-- @LOCK_TIMEOUT` / `-- @STATEMENT_TIMEOUT`
//! (and the `MIGRATE_LOCK_TIMEOUT` default) are what the migration's SQL runs under; a lock
//! held by another session makes a transactional migration roll back and retry
//! (`migration.retry`, reason "lock timeout") until the lock is released, or exit 30 naming
//! the holder once `MIGRATE_LOCK_RETRIES` are spent; malformed directive values are exit 20
//! naming file and line.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{OpenTx, TestDb, bin_at, dir_with, field, fresh_db, psql, run, wait_until};

/// The holder's `application_name`, which the exit-30 message must name.
const HOLDER_APP: &str = "lock_holder_test";

/// Another session, named [`HOLDER_APP`]: `BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;`, kept
/// open until [`OpenTx::commit`] (or drop) commits it.
fn take_lock(db: &TestDb, table: &str) -> OpenTx {
    let url = format!("{}&application_name={HOLDER_APP}", db.url);
    OpenTx::begin(
        &url,
        &format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"),
    )
}

/// The binary running in the background, its stdout lines collected as they come.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn start(db: &TestDb, dir: &std::path::Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = bin_at(&db.url, dir);
        cmd.env("MIGRATE_WAIT_TIMEOUT", "20s")
            .envs(env.iter().copied())
            .arg("migrate")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn crdb-migrate");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
            s
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn events_named(&self, name: &str) -> Vec<Value> {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| field(e, "event") == name)
            .collect()
    }

    /// Waits for the exit (at most 60 s); the exit code and stderr.
    fn finish(mut self) -> (i32, String) {
        let mut code = None;
        wait_until(Duration::from_secs(60), "crdb-migrate to exit", || {
            code = self
                .child
                .try_wait()
                .ok()
                .flatten()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        let stderr = self
            .reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        (code.unwrap_or(-1), stderr)
    }
}

fn lock_retries(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| field(e, "reason") == "lock timeout")
        .collect()
}

fn add_column_set() -> tempfile::TempDir {
    dir_with(&[(
        "1_add_note.sql",
        b"-- @LOCK_TIMEOUT 200ms\nALTER TABLE t ADD COLUMN note TEXT;\n-- @UNDO\nALTER TABLE t DROP COLUMN note;\n",
    )])
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: holds the lock with LOCK TABLE"
)]
fn a_held_lock_is_retried_and_the_migration_applies_once_it_is_released() {
    let db = fresh_db("lock_retry_applies");
    psql(&db.url, "CREATE TABLE t (id INT PRIMARY KEY)");
    let dir = add_column_set();
    let mut holder = take_lock(&db, "t");
    let running = Running::start(&db, dir.path(), &[("MIGRATE_LOCK_RETRIES", "20")]);
    wait_until(
        Duration::from_secs(30),
        "the first lock-timeout retry",
        || !lock_retries(&running.events_named("migration.retry")).is_empty(),
    );
    holder.commit();
    let lines = running.lines.clone();
    let (code, stderr) = running.finish();
    assert_eq!(
        code,
        0,
        "{stderr}\n{:?}",
        lines.lock().map(|l| l.join("\n"))
    );
    let events: Vec<Value> = lines
        .lock()
        .map(|l| {
            l.iter()
                .filter_map(|x| serde_json::from_str(x).ok())
                .collect()
        })
        .unwrap_or_default();
    let retries: Vec<&Value> = events
        .iter()
        .filter(|e| field(e, "event") == "migration.retry")
        .collect();
    assert!(!retries.is_empty());
    for r in &retries {
        assert_eq!(field(r, "reason"), "lock timeout", "{r}");
        assert_eq!(field(r, "sqlstate"), "55P03", "{r}");
        assert_eq!(field(r, "version"), 1, "{r}");
    }
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(version::text, ',') FROM _migrations"
        ),
        "1"
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'"
        ),
        "1"
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: holds the lock with LOCK TABLE"
)]
fn a_lock_held_throughout_exits_30_after_the_bounded_retries_naming_the_holder() {
    let db = fresh_db("lock_retry_exhausted");
    psql(&db.url, "CREATE TABLE t (id INT PRIMARY KEY)");
    let dir = add_column_set();
    let holder = take_lock(&db, "t");
    let holder_pid = psql(
        &db.url,
        &format!(
            "SELECT pid FROM pg_stat_activity WHERE application_name = '{HOLDER_APP}' AND datname = current_database()"
        ),
    );
    let out = run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "20s")
        .env("MIGRATE_LOCK_RETRIES", "2")
        .arg("migrate"));
    drop(holder);
    out.expect_code(30);
    let retries = out.events_named("migration.retry");
    assert_eq!(lock_retries(&retries).len(), 2, "{}", out.stdout);
    assert_eq!(
        retries.len(),
        2,
        "only lock-timeout retries: {}",
        out.stdout
    );
    for needle in [
        "SQLSTATE 55P03",
        "on each of 3 attempt(s)",
        "the lock was held by pid",
        holder_pid.as_str(),
        HOLDER_APP,
        "idle in transaction",
        "AccessExclusiveLock on t",
        "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
        "1_add_note.sql",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in\n{}", out.stderr);
    }
    assert_eq!(psql(&db.url, "SELECT count(*) FROM _migrations"), "0");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: holds the lock with LOCK TABLE"
)]
fn the_files_limits_and_the_default_are_what_the_sql_runs_under() {
    let db = fresh_db("limits_in_effect");
    let dir = dir_with(&[
        (
            "1_no_tx.sql",
            b"-- @NO_TRANSACTION\n-- @LOCK_TIMEOUT 1234ms\n-- @STATEMENT_TIMEOUT 10m\nCREATE TABLE a AS SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s;\n",
        ),
        (
            "2_plain.sql",
            b"CREATE TABLE b AS SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s;\n",
        ),
        (
            "3_tx.sql",
            b"-- @LOCK_TIMEOUT 5s\nCREATE TABLE c AS SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s;\n",
        ),
    ]);
    let out = run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "20s")
        .arg("migrate"));
    out.expect_code(0);
    assert_eq!(psql(&db.url, "SELECT l || ' ' || s FROM a"), "1234ms 10min");
    // The no-transaction step's session values were put back.
    assert_eq!(psql(&db.url, "SELECT l || ' ' || s FROM b"), "0 0");
    assert_eq!(psql(&db.url, "SELECT l || ' ' || s FROM c"), "5s 0");

    // The default applies to files without the directive.
    let db = fresh_db("limits_default");
    let out = run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "20s")
        .env("MIGRATE_LOCK_TIMEOUT", "750ms")
        .arg("migrate"));
    out.expect_code(0);
    assert_eq!(psql(&db.url, "SELECT l FROM b"), "750ms");
    assert_eq!(psql(&db.url, "SELECT l FROM c"), "5s");
}

#[test]
fn a_statement_timeout_from_the_file_fails_the_migration_with_exit_30() {
    let db = fresh_db("statement_timeout_file");
    let dir = dir_with(&[(
        "1_slow.sql",
        b"-- @STATEMENT_TIMEOUT 200ms\nSELECT pg_sleep(5);\n",
    )]);
    let out = run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "20s")
        .arg("migrate"));
    out.expect_code(30);
    assert!(out.stderr.contains("57014"), "{}", out.stderr);
    // A statement timeout is not a lock timeout: no retry.
    assert!(
        out.events_named("migration.retry").is_empty(),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_directive_values_are_exit_20_naming_file_and_line() {
    let db = fresh_db("bad_directives");
    let dir = dir_with(&[
        ("1_ok.sql", b"CREATE TABLE ok (id INT);\n"),
        (
            "2_bad_lock.sql",
            b"-- a comment first\n-- @LOCK_TIMEOUT soon\nALTER TABLE ok ADD COLUMN x INT;\n",
        ),
        (
            "3_bad_statement.sql",
            b"-- @STATEMENT_TIMEOUT 5 minutes\nSELECT 1;\n",
        ),
    ]);
    for cmd in ["migrate", "verify"] {
        let out = run(bin_at(&db.url, dir.path())
            .env("MIGRATE_WAIT_TIMEOUT", "20s")
            .arg(cmd));
        out.expect_code(20);
        for needle in ["2_bad_lock.sql:2", "3_bad_statement.sql:1", "soon"] {
            assert!(
                out.stderr.contains(needle),
                "{cmd}: {needle:?} in\n{}",
                out.stderr
            );
        }
    }
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('_migrations', 'ok')"
        ),
        "0",
        "nothing was sent"
    );
}

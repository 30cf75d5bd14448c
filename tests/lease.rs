//! Integration tests of the lease through the real binary against a real server:
//! 20 runners at once applying 200 migrations exactly once, a holder killed with SIGKILL and
//! one frozen with SIGSTOP past its TTL, SIGTERM with and without the in-flight migration
//! finishing inside the grace budget, `wait --version`, the lease timeout and `unlock`, the
//! fence token as logged, stored and shown by `status`, and which acquisition may take the
//! lease from which: never a stale one sent earlier by the same process (as a dropped lease
//! connection's backend runs it late), always a later one or another process of the same
//! holder name (a restarted pod), also on a lease table made by an earlier version.
//!
//! Every migration here writes its version into a side-effect table `effects` (and creates a
//! table `t_<version>`), so "applied exactly once" and "nothing partial" are read from the
//! database, not from the tool's own ledger. No fixed sleeps: every wait polls a condition
//! against a deadline.

mod support;

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::fixtures::{body, cmd, migrations, write_migration};
use support::*;

/// `MIGRATE_WAIT_TIMEOUT` of every run here: short, so a stuck wait fails the test soon.
const WAIT: &str = "20s";

/// A database with the side-effect table every migration writes to (with the time of each
/// write, unlike setup_race.rs's).
fn db_with_effects(tag: &str) -> TestDb {
    let db = fresh_db(tag);
    psql(
        &db.url,
        "CREATE TABLE effects (version INT8 NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
    );
    db
}

fn ledger_rows(db: &TestDb) -> i64 {
    count(db, "SELECT count(*) FROM _migrations")
}

/// A query on the connection of another session is running `pg_sleep` in this database.
fn sleeping(db: &TestDb) -> bool {
    count(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND query LIKE '%pg_sleep(%' AND pid <> pg_backend_pid()",
    ) > 0
}

/// `holder|fence|held` of the lease row.
fn lease_row(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(holder, ''), fence, (holder IS NOT NULL AND expires_at > now()) FROM _migrations_lease",
    )
}

fn lease_free(db: &TestDb) -> bool {
    count(
        db,
        "SELECT count(*) FROM _migrations_lease WHERE holder IS NULL",
    ) == 1
}

/// Versions whose side effect and ledger row disagree, or appear more than once.
fn inconsistencies(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(format('%s:%s/%s', v, e, l), ','), '') FROM (
           SELECT coalesce(e.version, l.version) AS v, coalesce(e.n, 0) AS e, coalesce(l.n, 0) AS l
           FROM (SELECT version, count(*) AS n FROM effects GROUP BY version) e
           FULL JOIN (SELECT version, count(*) AS n FROM _migrations GROUP BY version) l
             ON e.version = l.version) x
         WHERE e <> l OR e > 1",
    )
}

fn mentions_lease_acquired(o: &Output) -> bool {
    o.stdout.contains("lease.acquired") || o.stderr.contains("lease.acquired")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn twenty_runners_at_once_apply_two_hundred_migrations_exactly_once() {
    const RUNNERS: usize = 20;
    const N: i64 = 200;
    let db = db_with_effects("twenty_runners");
    let dir = migrations(N, |_| String::new());
    let barrier = Arc::new(Barrier::new(RUNNERS));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..RUNNERS)
        .map(|i| {
            let mut c = cmd(&db.url, dir.path(), &format!("runner-{i}"), WAIT);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                run_with_deadline(&mut c, Duration::from_secs(90))
            })
        })
        .collect();
    let outs: Vec<Output> = handles
        .into_iter()
        .map(|h| h.join().expect("runner thread"))
        .collect();
    let elapsed = t0.elapsed();
    for o in &outs {
        o.expect_code(0);
    }
    assert_eq!(inconsistencies(&db), "", "side effects vs ledger");
    assert_eq!(count(&db, "SELECT count(DISTINCT version) FROM effects"), N);
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), N);
    assert_eq!(ledger_rows(&db), N);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 't\\_%'"
        ),
        N
    );
    let applied: usize = outs
        .iter()
        .map(|o| o.events_named("migration.applied").len())
        .sum();
    assert_eq!(
        applied, N as usize,
        "migration.applied events over all runners"
    );
    // Every acquisition got its own fence, one more than the previous; the last is in the row.
    let mut fences: Vec<i64> = outs
        .iter()
        .flat_map(|o| o.events_named("lease.acquired"))
        .map(|e| field(&e, "fence").as_i64().expect("fence"))
        .collect();
    fences.sort();
    let acquisitions = fences.len() as i64;
    assert!(acquisitions >= 1);
    assert_eq!(fences, (1..=acquisitions).collect::<Vec<_>>());
    assert!(lease_free(&db), "lease free at the end: {}", lease_row(&db));
    assert_eq!(
        count(&db, "SELECT fence FROM _migrations_lease"),
        acquisitions
    );
    // Everything was applied under one fence: the winner's.
    assert_eq!(
        count(&db, "SELECT count(DISTINCT fence) FROM _migrations"),
        1
    );
    // The runners that took the lease after the winner re-read the ledger and stopped there.
    let peers_done: usize = outs
        .iter()
        .filter(|o| o.has_event("lease.acquired") && !o.has_event("migration.applied"))
        .filter(|o| o.has_event("run.nothing_to_do"))
        .count();
    assert_eq!(peers_done as i64, acquisitions - 1);
    eprintln!(
        "20 runners, {N} migrations: {elapsed:?}, {acquisitions} lease acquisitions, {} runners found nothing to do before taking the lease",
        RUNNERS as i64 - acquisitions
    );
}

#[test]
fn a_killed_holder_is_taken_over_once_its_ttl_passes() {
    const N: i64 = 20;
    let db = db_with_effects("kill9");
    let dir = migrations(N, |_| "SELECT pg_sleep(0.2);".into());
    let first = Background::spawn(
        cmd(&db.url, dir.path(), "first", WAIT)
            .env("MIGRATE_LEASE_TTL", "2s")
            .env("ENVIRONMENT", "first"),
    );
    wait_until(Duration::from_secs(30), "5 migrations applied", || {
        // The ledger does not exist until the first runner creates it.
        try_psql(&db.url, "SELECT count(*) >= 5 FROM _migrations").as_deref() == Ok("t")
    });
    first.signal("KILL");
    let killed_at = Instant::now();
    let out = first.wait(Duration::from_secs(10));
    assert_eq!(out.code, 128 + 9);
    let done_by_first = ledger_rows(&db);
    assert!(done_by_first < N, "killed mid-run");
    let first_fence = count(&db, "SELECT fence FROM _migrations_lease");
    let second = run_with_deadline(
        cmd(&db.url, dir.path(), "second", WAIT)
            .env("MIGRATE_LEASE_TTL", "2s")
            .env("MIGRATE_LEASE_TIMEOUT", "30s"),
        Duration::from_secs(60),
    );
    second.expect_code(0);
    let took = killed_at.elapsed();
    assert!(
        second.has_event("lease.waiting"),
        "the dead holder's lease was still live when the second runner came"
    );
    let acquired = second.events_named("lease.acquired");
    assert_eq!(acquired.len(), 1);
    assert_eq!(field(&acquired[0], "fence").as_i64(), Some(first_fence + 1));
    // At least 13 migrations of 0.2 s each: the heartbeat (every TTL/3 = 0.67 s) renewed.
    let renewed = second.events_named("lease.renewed");
    assert!(!renewed.is_empty(), "no lease.renewed in {}", second.stdout);
    assert_eq!(field(&renewed[0], "fence").as_i64(), Some(first_fence + 1));
    assert_eq!(field(&renewed[0], "holder").as_str(), Some("second"));
    assert_eq!(ledger_rows(&db), N);
    assert_eq!(inconsistencies(&db), "", "nothing partial, nothing twice");
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), N);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _migrations WHERE applied_by = 'second'"
        ),
        N - done_by_first
    );
    assert_eq!(
        second.events_named("migration.applied").len() as i64,
        N - done_by_first
    );
    assert!(lease_free(&db));
    eprintln!(
        "kill -9 after {done_by_first}/{N}; the second runner finished {took:?} after the kill"
    );
}

#[test]
fn a_frozen_holder_past_its_ttl_is_fenced_off_and_commits_nothing() {
    // Migration 2 sleeps past the TTL while the holder is frozen. Its whole step was sent as
    // one pipelined flight, so the server goes on without the client: when the sleep ends, the
    // fence check at the end of the transaction finds the lease expired (or taken) and raises,
    // and the flight's COMMIT rolls back, freeing `t_2` for the second runner's migration 2.
    frozen_holder("sigstop", FIRST_SLEEPS_PAST_THE_TTL);
}

#[test]
fn a_frozen_holder_holding_the_lease_row_lock_does_not_block_the_next_forever() {
    // As if frozen holding a row lock on the lease row (as the fence check does until
    // COMMIT): the second runner's acquiring UPDATE waits on that lock until the frozen
    // holder's transaction ends: its fence check, past the TTL, raises and the pipelined
    // COMMIT rolls it back.
    frozen_holder(
        "sigstop_lease_row",
        &format!(
            "UPDATE _migrations_lease SET expires_at = expires_at WHERE id = 1;\n{FIRST_SLEEPS_PAST_THE_TTL}"
        ),
    );
}

/// Migration 2's sleep: past the 2 s TTL in the first runner (ENVIRONMENT=first, which the
/// session exposes as `app.environment`), short in the second, whose own heartbeat must not
/// wait behind its migration's lock on the lease row for longer than the TTL.
const FIRST_SLEEPS_PAST_THE_TTL: &str =
    "SELECT pg_sleep(CASE WHEN current_setting('app.environment') = 'first' THEN 3 ELSE 0.2 END);";

/// SIGSTOP of the holder inside migration 2 (whose body ends with `extra`), a second runner
/// with the same 2 s TTL completes, then SIGCONT: the first exits 12 and commits nothing.
fn frozen_holder(tag: &str, extra: &str) {
    let db = db_with_effects(tag);
    let dir = migrations(3, |v| if v == 2 { extra.into() } else { String::new() });
    let first = Background::spawn(
        cmd(&db.url, dir.path(), "first", WAIT)
            .env("MIGRATE_LEASE_TTL", "2s")
            .env("ENVIRONMENT", "first"),
    );
    wait_until(
        Duration::from_secs(30),
        "the first runner inside migration 2",
        || sleeping(&db),
    );
    first.signal("STOP");
    let frozen_at = Instant::now();
    let before = psql(&db.url, "SELECT version, fence FROM _migrations ORDER BY 1");
    assert_eq!(before.lines().count(), 1, "only migration 1 done: {before}");
    let first_fence = count(&db, "SELECT fence FROM _migrations_lease");
    let second = run_with_deadline(
        cmd(&db.url, dir.path(), "second", WAIT)
            .env("MIGRATE_LEASE_TTL", "2s")
            .env("MIGRATE_LEASE_TIMEOUT", "30s"),
        Duration::from_secs(60),
    );
    second.expect_code(0);
    let second_took = frozen_at.elapsed();
    assert_eq!(second.events_named("migration.applied").len(), 2);
    let after_second = psql(
        &db.url,
        "SELECT version, fence, applied_by FROM _migrations ORDER BY 1",
    );
    first.signal("CONT");
    let out = first.wait(Duration::from_secs(30));
    out.expect_code(12);
    assert!(out.stderr.contains("lease lost"), "{}", out.stderr);
    assert_eq!(
        psql(
            &db.url,
            "SELECT version, fence, applied_by FROM _migrations ORDER BY 1"
        ),
        after_second,
        "the frozen runner committed nothing after it woke"
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM _migrations WHERE fence = {first_fence}")
        ),
        1,
        "only migration 1 under the first fence"
    );
    assert_eq!(inconsistencies(&db), "");
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 3);
    assert_eq!(
        count(&db, "SELECT count(*) FROM effects WHERE version = 2"),
        1
    );
    assert!(
        !out.has_event("migration.applied") || out.events_named("migration.applied").len() == 1,
        "the first runner applied migration 1 only"
    );
    assert!(lease_free(&db), "{}", lease_row(&db));
    eprintln!("SIGSTOP ({tag}): the second runner completed {second_took:?} after the freeze");
}

/// Reads the termination message written by a run.
fn termination(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).expect("termination message written");
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    serde_json::from_str(text.trim()).expect("termination message is JSON")
}

#[test]
fn sigterm_past_the_grace_budget_abandons_the_migration_and_releases_the_lease() {
    let db = db_with_effects("sigterm_abandon");
    let dir = migrations(3, |v| {
        if v == 2 {
            "SELECT pg_sleep(60);".into()
        } else {
            String::new()
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let term_log = tmp.path().join("termination-log");
    let run = Background::spawn(
        cmd(&db.url, dir.path(), "terminated", WAIT)
            .env("MIGRATE_SHUTDOWN_GRACE", "1s")
            .env("MIGRATE_TERMINATION_LOG", &term_log),
    );
    wait_until(Duration::from_secs(30), "migration 2 running", || {
        sleeping(&db)
    });
    run.signal("TERM");
    let t0 = Instant::now();
    let out = run.wait(Duration::from_secs(30));
    let took = t0.elapsed();
    out.expect_code(143);
    // Right after the exit, without waiting for the 30 s default TTL.
    assert!(lease_free(&db), "lease released: {}", lease_row(&db));
    assert!(
        took < Duration::from_secs(4),
        "exit within the 1 s grace budget plus clean-up, took {took:?}"
    );
    assert!(out.has_event("lease.released"));
    let msg = termination(&term_log);
    assert_eq!(msg["exit_code"], 143);
    assert_eq!(msg["applied"], 1);
    // The abandoned migration was cancelled, not left running on the server: its locks (on
    // `t_2`) are gone, so the next run, with a quick migration 2, does not block on them.
    wait_until(
        Duration::from_secs(3),
        "the abandoned statement cancelled",
        || !sleeping(&db),
    );
    write_migration(dir.path(), 2, "");
    let t1 = Instant::now();
    let next = run_with_deadline(
        cmd(&db.url, dir.path(), "next", WAIT).env("MIGRATE_LEASE_TIMEOUT", "1s"),
        Duration::from_secs(30),
    );
    next.expect_code(0);
    assert!(!next.has_event("lease.waiting"));
    assert_eq!(ledger_rows(&db), 3);
    assert_eq!(inconsistencies(&db), "");
    eprintln!(
        "SIGTERM past grace: exit 143 after {took:?}; next run done in {:?}",
        t1.elapsed()
    );
}

#[test]
fn sigterm_lets_the_in_flight_migration_finish_within_the_grace_budget() {
    let db = db_with_effects("sigterm_finish");
    let dir = migrations(3, |v| {
        if v == 2 {
            "SELECT pg_sleep(1);".into()
        } else {
            String::new()
        }
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let term_log = tmp.path().join("termination-log");
    let run = Background::spawn(
        cmd(&db.url, dir.path(), "terminated", WAIT)
            .env("MIGRATE_SHUTDOWN_GRACE", "10s")
            .env("MIGRATE_TERMINATION_LOG", &term_log),
    );
    wait_until(Duration::from_secs(30), "migration 2 running", || {
        sleeping(&db)
    });
    run.signal("TERM");
    let t0 = Instant::now();
    let out = run.wait(Duration::from_secs(30));
    let took = t0.elapsed();
    out.expect_code(143);
    assert!(lease_free(&db), "lease released: {}", lease_row(&db));
    assert!(took < Duration::from_secs(10), "within grace: {took:?}");
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM _migrations"
        ),
        "1,2",
        "the in-flight migration finished, the next was not started"
    );
    assert_eq!(inconsistencies(&db), "");
    assert_eq!(out.events_named("migration.applied").len(), 2);
    let msg = termination(&term_log);
    assert_eq!(msg["exit_code"], 143);
    assert_eq!(msg["applied"], 2);
    eprintln!("SIGTERM within grace: exit 143 after {took:?}");
}

#[test]
fn sigterm_during_the_last_migration_that_then_finishes_is_success() {
    let db = db_with_effects("sigterm_last");
    let dir = migrations(1, |_| "SELECT pg_sleep(1);".into());
    let run = Background::spawn(
        cmd(&db.url, dir.path(), "finishing", WAIT).env("MIGRATE_SHUTDOWN_GRACE", "10s"),
    );
    wait_until(Duration::from_secs(30), "the migration running", || {
        sleeping(&db)
    });
    run.signal("TERM");
    let out = run.wait(Duration::from_secs(30));
    // Nothing was left undone: the database is at the target, which is exit 0.
    out.expect_code(0);
    assert_eq!(ledger_rows(&db), 1);
    assert!(lease_free(&db), "lease released: {}", lease_row(&db));
}

#[test]
fn sigterm_while_waiting_for_the_database_stops_at_once() {
    let dir = migrations(1, |_| String::new());
    let mut c = bin();
    c.env(
        "DATABASE_URL",
        format!(
            "postgresql://u@127.0.0.1:{}/db?sslmode=disable",
            free_port()
        ),
    )
    .env("MIGRATIONS_DIR", dir.path())
    .env("MIGRATE_WAIT_TIMEOUT", "60s")
    .env("MIGRATE_SHUTDOWN_GRACE", "20s");
    let run = Background::spawn(&mut c);
    wait_until(Duration::from_secs(20), "a failed attempt logged", || {
        run.has_logged("db.wait")
    });
    let t0 = Instant::now();
    run.signal("TERM");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(143);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "no migration in flight, so no grace to wait out: {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_second_signal_abandons_the_migration_without_waiting_out_the_grace() {
    let db = db_with_effects("second_signal");
    let dir = migrations(1, |_| "SELECT pg_sleep(60);".into());
    let run = Background::spawn(
        cmd(&db.url, dir.path(), "impatient", WAIT).env("MIGRATE_SHUTDOWN_GRACE", "30s"),
    );
    wait_until(Duration::from_secs(30), "the migration running", || {
        sleeping(&db)
    });
    run.signal("INT");
    wait_until(Duration::from_secs(10), "the first signal logged", || {
        run.has_logged("run.signal")
    });
    let t0 = Instant::now();
    run.signal("INT");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(143);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(ledger_rows(&db), 0);
    assert!(lease_free(&db), "lease released: {}", lease_row(&db));
}

#[test]
fn rollback_by_count_rides_out_a_dropped_connection_and_undoes_exactly_that_many() {
    let db = fresh_db("rollback_reconnect");
    // Migration 3's undo sleeps the first time only (a sequence is not rolled back with the
    // transaction the server ends).
    psql(&db.url, "CREATE SEQUENCE undo_once");
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=4 {
        let undo = if v == 3 {
            "SELECT CASE WHEN nextval('undo_once') = 1 THEN pg_sleep(60) END;\nDROP TABLE t3;"
                .to_string()
        } else {
            format!("DROP TABLE t{v};")
        };
        let sql = format!("CREATE TABLE t{v} (id INT);\n-- @UNDO\n{undo}\n");
        fs::write(dir.path().join(format!("{v}_t{v}.sql")), sql).expect("write");
    }
    run(&mut cmd(&db.url, dir.path(), "up", WAIT)).expect_code(0);
    assert_eq!(fixtures::versions(&db), "1,2,3,4");
    let rollback = Background::spawn(
        cmd(&db.url, dir.path(), "down", WAIT).args(["rollback", "--count", "3"]),
    );
    wait_until(Duration::from_secs(30), "the undo of 3 running", || {
        sleeping(&db)
    });
    // A node drains mid-rollback: the server ends the migration connection; 4 is undone.
    let ended = psql(
        &db.url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE '%pg_sleep(%' \
         AND pid <> pg_backend_pid()",
    );
    assert_eq!(ended, "1");
    let out = rollback.wait(Duration::from_secs(30));
    out.expect_code(0);
    assert!(out.has_event("db.reconnected"), "{}", out.stdout);
    // Three undone in all, counted from the ledger read before the run started: the count is
    // not applied again to what is left after the reconnect.
    assert_eq!(fixtures::versions(&db), "1");
    let finished = out.events_named("run.finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(
        finished[0]["applied"], 3,
        "the run's report spans the reconnect"
    );
    assert!(lease_free(&db), "lease released: {}", lease_row(&db));
}

#[test]
fn wait_rides_out_a_dropped_connection() {
    let db = db_with_effects("wait_reconnect");
    let dir = migrations(1, |_| String::new());
    let waiter = Background::spawn(cmd(&db.url, dir.path(), "waiter", WAIT).args([
        "wait",
        "--version",
        "1",
    ]));
    wait_until(Duration::from_secs(20), "the waiter polling", || {
        waiter.has_logged("wait.polling")
    });
    // A node drains: the server ends the waiter's session.
    let ended = psql(
        &db.url,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{}' AND application_name = 'crdb-migrate'",
            db.name
        ),
    );
    assert_eq!(ended, "1");
    run(cmd(&db.url, dir.path(), "migrator", WAIT).arg("migrate")).expect_code(0);
    let out = waiter.wait(Duration::from_secs(20));
    out.expect_code(0);
    assert!(out.has_event("wait.reached"), "{}", out.stdout);
}

#[test]
fn wait_polls_until_a_database_that_does_not_exist_yet_is_created_and_migrated() {
    let name = format!("green_{}", std::process::id());
    let url = server().admin_url(&name);
    let dir = migrations(1, |_| String::new());
    let mut waiter_cmd = bin();
    waiter_cmd
        .env("DATABASE_URL", &url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "30s")
        .args(["wait", "--version", "1"]);
    let waiter = Background::spawn(&mut waiter_cmd);
    wait_until(Duration::from_secs(20), "the waiter polling", || {
        waiter.has_logged("wait.polling")
    });
    // The blue-green Job creates the database and migrates it.
    psql(
        &server().maintenance_url(),
        &format!("CREATE DATABASE {name}"),
    );
    psql(
        &url,
        "CREATE TABLE effects (version INT8 NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())",
    );
    run(bin()
        .env("DATABASE_URL", &url)
        .env("MIGRATIONS_DIR", dir.path())
        .arg("migrate"))
    .expect_code(0);
    let out = waiter.wait(Duration::from_secs(30));
    out.expect_code(0);
}

#[test]
fn wait_returns_once_another_process_applies_the_version_and_11_at_its_timeout() {
    let db = db_with_effects("wait_version");
    let dir = migrations(3, |_| String::new());
    let waiter = Background::spawn(cmd(&db.url, dir.path(), "waiter", WAIT).args([
        "wait",
        "--version",
        "2",
    ]));
    wait_until(Duration::from_secs(20), "the waiter polling", || {
        waiter.has_logged("wait.polling")
    });
    run(cmd(&db.url, dir.path(), "migrator", WAIT).args(["migrate", "--target", "2"]))
        .expect_code(0);
    let out = waiter.wait(Duration::from_secs(20));
    out.expect_code(0);
    assert!(out.has_event("wait.reached"));
    assert!(!mentions_lease_acquired(&out), "wait takes no lease");
    // Version 3 is never applied: 11 at the timeout.
    let t0 = Instant::now();
    let out = run(cmd(&db.url, dir.path(), "waiter", WAIT)
        .env("MIGRATE_WAIT_TIMEOUT", "1s")
        .args(["wait", "--version", "3"]));
    out.expect_code(11);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(out.stderr.contains("version 3"), "{}", out.stderr);
}

#[test]
fn a_lease_held_elsewhere_times_out_with_11_until_unlock_force() {
    let db = db_with_effects("lease_timeout");
    let dir = migrations(1, |_| String::new());
    run(&mut cmd(&db.url, dir.path(), "setup", WAIT)).expect_code(0);
    write_migration(dir.path(), 2, "");
    psql(
        &db.url,
        "UPDATE _migrations_lease SET holder = 'pod-elsewhere', fence = fence + 1, \
         expires_at = now() + INTERVAL '1 hour'",
    );
    let t0 = Instant::now();
    let out = run(cmd(&db.url, dir.path(), "me", WAIT).env("MIGRATE_LEASE_TIMEOUT", "1s"));
    out.expect_code(11);
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    assert!(out.stderr.contains("pod-elsewhere"), "{}", out.stderr);
    assert!(out.has_event("lease.waiting"));
    assert_eq!(ledger_rows(&db), 1, "nothing applied without the lease");
    let shown = run(cmd(&db.url, dir.path(), "me", WAIT).arg("unlock"));
    shown.expect_code(0);
    assert!(
        shown.stdout.contains("pod-elsewhere") && shown.stdout.contains("fence 2"),
        "{}",
        shown.stdout
    );
    assert!(!lease_free(&db), "unlock without --force changes nothing");
    let forced = run(cmd(&db.url, dir.path(), "me", WAIT).args(["unlock", "--force"]));
    forced.expect_code(0);
    assert!(lease_free(&db));
    let logged: Vec<serde_json::Value> = forced
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| field(e, "event") == "lease.released")
        .collect();
    assert_eq!(logged.len(), 1, "{}", forced.stderr);
    assert_eq!(field(&logged[0], "holder"), "pod-elsewhere");
    assert_eq!(field(&logged[0], "forced"), true);
    let out = run(cmd(&db.url, dir.path(), "me", WAIT).env("MIGRATE_LEASE_TIMEOUT", "1s"));
    out.expect_code(0);
    assert_eq!(ledger_rows(&db), 2);
}

#[test]
fn fences_grow_per_acquisition_are_stored_and_shown_and_only_writers_take_the_lease() {
    let db = db_with_effects("fences");
    let dir = migrations(2, |_| String::new());
    let me = |args: &[&str]| run(cmd(&db.url, dir.path(), "me", WAIT).args(args));
    // Read-only commands take no lease (and create nothing).
    for args in [&["status", "--json"][..], &["plan"][..], &["verify"][..]] {
        let out = me(args);
        out.expect_code(0);
        assert!(!mentions_lease_acquired(&out), "{args:?} took the lease");
    }
    let first = me(&["migrate"]);
    first.expect_code(0);
    let acquired = first.events_named("lease.acquired");
    let released = first.events_named("lease.released");
    assert_eq!(acquired.len(), 1);
    assert_eq!(released.len(), 1);
    for e in [&acquired[0], &released[0]] {
        assert_eq!(field(e, "holder"), "me");
        assert_eq!(field(e, "fence"), 1);
    }
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(format('%s:%s', version, fence), ',' ORDER BY version) FROM _migrations"
        ),
        "1:1,2:1"
    );
    write_migration(dir.path(), 3, "");
    let second = me(&["migrate"]);
    second.expect_code(0);
    assert_eq!(field(&second.events_named("lease.acquired")[0], "fence"), 2);
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(format('%s:%s', version, fence), ',' ORDER BY version) FROM _migrations"
        ),
        "1:1,2:1,3:2"
    );
    let out = me(&["wait", "--version", "3"]);
    out.expect_code(0);
    assert!(!mentions_lease_acquired(&out), "wait took the lease");
    let rolled = me(&["rollback"]);
    rolled.expect_code(0);
    assert_eq!(field(&rolled.events_named("lease.acquired")[0], "fence"), 3);
    fs::write(dir.path().join("1_m1.sql"), body(1, "-- edited on purpose")).expect("edit");
    let repaired = me(&["repair", "--version", "1", "--accept-checksum"]);
    repaired.expect_code(0);
    assert_eq!(
        field(&repaired.events_named("lease.acquired")[0], "fence"),
        4
    );
    // `status --json` shows the lease: free, last fence 4; then held by someone.
    let s: serde_json::Value =
        serde_json::from_str(&me(&["status", "--json"]).stdout).expect("status json");
    assert_eq!(s["lease"]["holder"], serde_json::Value::Null);
    assert_eq!(s["lease"]["fence"], 4);
    assert_eq!(s["lease"]["held"], false);
    psql(
        &db.url,
        "UPDATE _migrations_lease SET holder = 'someone', fence = fence + 1, expires_at = now() + INTERVAL '1 minute'",
    );
    let out = me(&["status", "--json"]);
    out.expect_code(0);
    assert!(!mentions_lease_acquired(&out));
    let s: serde_json::Value = serde_json::from_str(&out.stdout).expect("status json");
    assert_eq!(s["lease"]["holder"], "someone");
    assert_eq!(s["lease"]["fence"], 5);
    assert_eq!(s["lease"]["held"], true);
    assert!(
        s["lease"]["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

// ---------------------------------------------------------------------------------------------
// Stale acquisitions: an acquiring UPDATE left in a dropped connection's backend
// ---------------------------------------------------------------------------------------------

/// The statement another session of this database is waiting on a lock with, once one whose
/// text contains `needle` is.
fn waiting_on_a_lock(db: &TestDb, needle: &str) -> String {
    let sql = format!(
        "SELECT query FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE {} LIMIT 1",
        quote_literal(&format!("%{needle}%"))
    );
    let mut query = String::new();
    wait_until(Duration::from_secs(30), needle, || {
        query = psql(&db.url, &sql);
        !query.is_empty()
    });
    query
}

/// Runs the binary's own acquiring statement `acquire` by hand as `holder`, with the process
/// token `owner` and statement number `seq` (TTL one minute); the new fence, or "" when refused.
fn acquire_by_hand(db: &TestDb, acquire: &str, holder: &str, owner: &str, seq: i64) -> String {
    psql(
        &db.url,
        &format!(
            "PREPARE acquire AS {acquire};\nEXECUTE acquire({}, 60000, {}, {seq});",
            quote_literal(holder),
            quote_literal(owner)
        ),
    )
}

/// Migrations 1 to 3; migration 2 inserts into `gate`, so it waits while the test locks it.
fn gated(tag: &str) -> (TestDb, tempfile::TempDir) {
    let db = db_with_effects(tag);
    psql(&db.url, "CREATE TABLE gate (v INT8)");
    let dir = migrations(3, |v| match v {
        2 => "INSERT INTO gate VALUES (2);".into(),
        _ => String::new(),
    });
    (db, dir)
}

/// The acquiring statement of a run, read from `pg_stat_activity` while it waits behind a row
/// lock of the test's; then the run holds the lease inside migration 2, waiting at the gate.
/// Returns the statement, the run and the gate (commit it to let the run go on).
fn holding_at_the_gate(db: &TestDb, dir: &Path, holder: &str) -> (String, Background, OpenTx) {
    run(cmd(&db.url, dir, holder, WAIT).args(["migrate", "--target", "1"])).expect_code(0);
    let mut row = OpenTx::begin(
        &db.url,
        "SELECT 1 FROM _migrations_lease WHERE id = 1 FOR UPDATE",
    );
    let gate = OpenTx::begin(&db.url, "LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
    let running = Background::spawn(cmd(&db.url, dir, holder, WAIT).env("MIGRATE_LEASE_TTL", "1m"));
    let acquire = waiting_on_a_lock(db, "SET holder = $1::TEXT");
    row.commit();
    waiting_on_a_lock(db, "INSERT INTO gate");
    (acquire, running, gate)
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: reads lock waits in pg_stat_activity"
)]
fn a_stale_acquisition_of_an_earlier_attempt_never_takes_the_lease_from_a_later_one() {
    let (db, dir) = gated("stale_acquire");
    let (acquire, running, mut gate) = holding_at_the_gate(&db, dir.path(), "pod-a");
    let row = "SELECT owner || '|' || owner_seq || '|' || fence FROM _migrations_lease";
    let held = psql(&db.url, row);
    let [owner, seq, fence]: [&str; 3] = held
        .split('|')
        .collect::<Vec<_>>()
        .try_into()
        .expect("owner|seq|fence");
    let seq: i64 = seq.parse().expect("owner_seq");
    // What the old backend of a dropped lease connection runs late: the same process's
    // acquisition, sent before the one that took the lease, under the same holder name.
    assert_eq!(acquire_by_hand(&db, &acquire, "pod-a", owner, seq - 1), "");
    assert_eq!(
        psql(&db.url, row),
        held,
        "the stale acquisition changed nothing"
    );
    gate.commit();
    let out = running.wait(Duration::from_secs(60));
    out.expect_code(0);
    assert_eq!(out.events_named("lease.acquired").len(), 1);
    assert_eq!(out.events_named("migration.applied").len(), 2);
    assert_eq!(inconsistencies(&db), "", "nothing partial, nothing twice");
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM _migrations"), 3);
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT fence) FROM _migrations WHERE version > 1"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM _migrations WHERE fence = {fence}")
        ),
        2
    );
    // Released, it stays free: the stale statement does not take it for a TTL either.
    assert_eq!(acquire_by_hand(&db, &acquire, "pod-a", owner, seq - 1), "");
    assert!(lease_free(&db), "{}", lease_row(&db));
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: reads lock waits in pg_stat_activity"
)]
fn the_acquisition_lets_later_statements_and_other_processes_of_a_holder_take_over() {
    let (db, dir) = gated("acquire_owner");
    let (acquire, running, mut gate) = holding_at_the_gate(&db, dir.path(), "pod-a");
    gate.commit();
    running.wait(Duration::from_secs(60)).expect_code(0);
    let fence = count(&db, "SELECT fence FROM _migrations_lease");
    let take =
        |holder: &str, owner: &str, seq: i64| acquire_by_hand(&db, &acquire, holder, owner, seq);
    // An earlier attempt's stale statement took the free lease; the attempt that started over
    // takes it from there at once.
    assert_eq!(take("pod-a", "p", 1), (fence + 1).to_string());
    assert_eq!(take("pod-a", "p", 2), (fence + 2).to_string());
    assert_eq!(
        take("pod-a", "p", 1),
        "",
        "never back to the earlier statement"
    );
    // Another process under the same name (a restarted pod) takes over at once.
    assert_eq!(take("pod-a", "q", 1), (fence + 3).to_string());
    // Another holder waits for the unexpired lease, whatever its numbers.
    assert_eq!(take("pod-b", "r", 99), "");
    // A row left by an earlier version of the tool (no owner) is taken under the same name.
    psql(
        &db.url,
        "UPDATE _migrations_lease SET owner = NULL, owner_seq = NULL",
    );
    assert_eq!(take("pod-a", "p", 1), (fence + 4).to_string());
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: reads lock waits in pg_stat_activity"
)]
fn a_restarted_process_with_the_same_holder_takes_over_its_predecessors_lease_at_once() {
    let (db, dir) = gated("restarted_holder");
    let (_, first, mut gate) = holding_at_the_gate(&db, dir.path(), "pod-a");
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    // The server ends the dead process's sessions (here at once, as a keepalive would later),
    // so its migration 2 cannot commit behind the gate.
    psql(
        &db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'crdb-migrate'",
    );
    wait_until(
        Duration::from_secs(10),
        "the dead process's sessions gone",
        || {
            count(
                &db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'crdb-migrate'",
            ) == 0
        },
    );
    gate.commit();
    // The dead process's lease: held, a minute to go.
    let fence = count(&db, "SELECT fence FROM _migrations_lease");
    assert_eq!(lease_row(&db), format!("pod-a|{fence}|t"));
    let t0 = Instant::now();
    let out = run(cmd(&db.url, dir.path(), "pod-a", WAIT)
        .env("MIGRATE_LEASE_TTL", "1m")
        .env("MIGRATE_LEASE_TIMEOUT", "2s"));
    out.expect_code(0);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(!out.has_event("lease.waiting"), "{}", out.stdout);
    let acquired = out.events_named("lease.acquired");
    assert_eq!(acquired.len(), 1);
    assert_eq!(field(&acquired[0], "fence").as_i64(), Some(fence + 1));
    assert_eq!(inconsistencies(&db), "", "nothing partial, nothing twice");
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 3);
    assert!(lease_free(&db), "{}", lease_row(&db));
}

#[test]
fn a_lease_table_of_an_earlier_version_gains_the_owner_columns_and_its_holder_takes_over() {
    let db = db_with_effects("lease_owner_added");
    let dir = migrations(2, |_| String::new());
    // As an earlier version left it: no owner columns, held by this holder for an hour.
    psql(
        &db.url,
        "CREATE TABLE _migrations_lease (id INT8 PRIMARY KEY, holder TEXT, \
         fence INT8 NOT NULL DEFAULT 0, expires_at TIMESTAMPTZ, acquired_at TIMESTAMPTZ); \
         INSERT INTO _migrations_lease VALUES (1, 'pod-a', 7, now() + INTERVAL '1 hour', now())",
    );
    let out = run(cmd(&db.url, dir.path(), "pod-a", WAIT).env("MIGRATE_LEASE_TIMEOUT", "2s"));
    out.expect_code(0);
    assert!(!out.has_event("lease.waiting"), "{}", out.stdout);
    assert_eq!(
        field(&out.events_named("lease.acquired")[0], "fence").as_i64(),
        Some(8)
    );
    assert!(column_exists(&db, "_migrations_lease", "owner"));
    assert!(column_exists(&db, "_migrations_lease", "owner_seq"));
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 2);
    assert!(lease_free(&db), "{}", lease_row(&db));
}

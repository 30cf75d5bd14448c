//! Chained transactions against a real PostgreSQL, through the binary: consecutive
//! transactional migrations go out as one flight, each in its own transaction with its ledger
//! row, and every step after the first refuses to start unless the one before it committed:
//! a failure, a spent replay budget, a fence moved and a stop stop the chain there (up and
//! down); a 40001 and a lock timeout send it again from the failed migration.
//!
//! Each migration `v` counts its executions in a sequence `ran_<v>` (`nextval` is not
//! transactional, so a rolled-back run still counts), and commits its side effect in the table
//! `effects`: "did not run" and "ran exactly once" are read from the database.
//!
//! PostgreSQL only: CockroachDB never chains (each step's COMMIT answers before the next is
//! sent), and the 40001 imitation needs plpgsql.

mod support;

use std::path::Path;
use std::time::Duration;

use support::fixtures::ledger_rows;
use support::*;

/// The holder every run here takes the lease as.
const HOLDER: &str = "chain-test";

/// A database with the side-effect table and one execution counter per version `1..=n`.
fn chain_db(tag: &str, n: i64) -> TestDb {
    let db = fresh_db(tag);
    let counters: String = (1..=n)
        .map(|v| format!("CREATE SEQUENCE ran_{v}; CREATE SEQUENCE undone_{v};"))
        .collect();
    psql(
        &db.url,
        &format!("CREATE TABLE effects (version INT8 NOT NULL); {counters}"),
    );
    db
}

/// Migration `v`: counts its run, makes table `t_<v>` and its side effect, then `extra`; its
/// undo counts its run, drops both, then `undo_extra`.
fn write(dir: &Path, v: i64, extra: &str, undo_extra: &str) {
    let body = format!(
        "SELECT nextval('ran_{v}');\nCREATE TABLE t_{v} (id INT);\n\
         INSERT INTO effects (version) VALUES ({v});\n{extra}\n\
         -- @UNDO\nSELECT nextval('undone_{v}');\nDROP TABLE t_{v};\n\
         DELETE FROM effects WHERE version = {v};\n{undo_extra}\n"
    );
    std::fs::write(dir.join(format!("{v}_m{v}.sql")), body).expect("write migration");
}

/// Versions `1..=n`, with `extra(v)` and `undo_extra(v)` appended to each.
fn files(
    n: i64,
    extra: impl Fn(i64) -> String,
    undo_extra: impl Fn(i64) -> String,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        write(dir.path(), v, &extra(v), &undo_extra(v));
    }
    dir
}

/// The binary on `db` with `dir` and `args`.
fn run_on(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    run(support::fixtures::cmd(&db.url, dir, HOLDER, "10s").args(args))
}

/// How often each version's `prefix` counter ran, `v:count` comma-separated (0: never).
fn counts(db: &TestDb, prefix: &str, n: i64) -> String {
    let parts: Vec<String> = (1..=n)
        .map(|v| {
            format!("'{v}:' || (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {prefix}_{v})")
        })
        .collect();
    psql(&db.url, &format!("SELECT {}", parts.join(" || ',' || ")))
}

/// `v:n` for each version, `n` from `count(v)`.
fn expect(n: i64, count: impl Fn(i64) -> i64) -> String {
    (1..=n)
        .map(|v| format!("{v}:{}", count(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The versions of the events named `name`, in order.
fn versions_of(out: &Output, name: &str) -> Vec<i64> {
    out.events_named(name)
        .iter()
        .filter_map(|e| field(e, "version").as_i64())
        .collect()
}

/// The committed side effects, ascending and comma-separated.
fn effects(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM effects",
    )
}

/// Raises 40001 (as CockroachDB's restarts do) while the sequence `attempts` is below `n`.
fn fail_until(n: u32) -> String {
    format!(
        "SELECT nextval('attempts');\n\
         DO $$ BEGIN IF currval('attempts') < {n} THEN \
         RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001'; END IF; END $$;"
    )
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn a_clean_chain_applies_each_migration_once_and_reports_each() {
    let db = chain_db("chain_clean", 12);
    let dir = files(12, |_| String::new(), |_| String::new());
    let out = run_on(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(counts(&db, "ran", 12), expect(12, |_| 1));
    assert_eq!(ledger_rows(&db).matches(":applied").count(), 12);
    let all: Vec<i64> = (1..=12).collect();
    assert_eq!(versions_of(&out, "migration.started"), all);
    assert_eq!(versions_of(&out, "migration.applied"), all);
    // Each reports its own duration.
    for e in out.events_named("migration.applied") {
        assert!(field(&e, "duration_ms").as_u64().is_some(), "{e}");
    }
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn a_failure_in_migration_k_stops_the_chain_before_k_plus_1_runs() {
    let db = chain_db("chain_fail", 10);
    let dir = files(
        10,
        |v| {
            if v == 5 {
                "SELECT 1/0;".into()
            } else {
                String::new()
            }
        },
        |_| String::new(),
    );
    let out = run_on(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    // 1..4 committed; 5 ran and rolled back; 6.. never ran a statement.
    assert_eq!(counts(&db, "ran", 10), expect(10, |v| i64::from(v <= 5)));
    assert_eq!(ledger_rows(&db), "1:applied,2:applied,3:applied,4:applied");
    assert_eq!(effects(&db), "1,2,3,4");
    assert!(!table_exists(&db, "t_5") && !table_exists(&db, "t_6"));
    assert_eq!(versions_of(&out, "migration.started"), vec![1, 2, 3, 4, 5]);
    assert_eq!(versions_of(&out, "migration.applied"), vec![1, 2, 3, 4]);
    assert_eq!(versions_of(&out, "migration.failed"), vec![5]);
    assert!(out.stderr.contains("division by zero"), "{}", out.stderr);
    // The next run resumes at 5 once the file is fixed, and runs each of 5.. once.
    let fixed = files(10, |_| String::new(), |_| String::new());
    run_on(&db, fixed.path(), &["migrate"]).expect_code(0);
    assert_eq!(
        counts(&db, "ran", 10),
        expect(10, |v| if v == 5 { 2 } else { 1 })
    );
    assert_eq!(effects(&db), "1,2,3,4,5,6,7,8,9,10");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates 40001 with plpgsql"
)]
fn a_40001_in_migration_k_resumes_the_chain_at_k() {
    let db = chain_db("chain_retry", 10);
    psql(&db.url, "CREATE SEQUENCE attempts");
    let dir = files(
        10,
        |v| if v == 4 { fail_until(3) } else { String::new() },
        |_| String::new(),
    );
    let out = run_on(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    // 4 ran three times (two rolled back); the steps after it ran once, on the last attempt:
    // their guards stopped them before any statement on the first two.
    assert_eq!(
        counts(&db, "ran", 10),
        expect(10, |v| if v == 4 { 3 } else { 1 })
    );
    assert_eq!(effects(&db), "1,2,3,4,5,6,7,8,9,10");
    assert_eq!(ledger_rows(&db).matches(":applied").count(), 10);
    assert_eq!(versions_of(&out, "migration.retry"), vec![4, 4]);
    let all: Vec<i64> = (1..=10).collect();
    assert_eq!(versions_of(&out, "migration.started"), all);
    assert_eq!(versions_of(&out, "migration.applied"), all);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates 40001 with plpgsql"
)]
fn spent_40001_replays_in_migration_k_keep_what_came_before() {
    let db = chain_db("chain_spent", 6);
    psql(&db.url, "CREATE SEQUENCE attempts");
    let dir = files(
        6,
        |v| {
            if v == 3 {
                fail_until(i32::MAX as u32)
            } else {
                String::new()
            }
        },
        |_| String::new(),
    );
    let out = run_on(&db, dir.path(), &["migrate"]);
    out.expect_code(13);
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
    assert_eq!(
        counts(&db, "ran", 6),
        expect(6, |v| match v {
            1 | 2 => 1,
            3 => 10,
            _ => 0,
        })
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn a_fence_moved_mid_chain_commits_nothing_after_it() {
    let db = chain_db("chain_fence", 6);
    let dir = files(
        6,
        |v| {
            if v == 3 {
                "SELECT pg_sleep(2);".into()
            } else {
                String::new()
            }
        },
        |_| String::new(),
    );
    let run = Background::spawn(
        support::fixtures::cmd(&db.url, dir.path(), HOLDER, "10s").arg("migrate"),
    );
    wait_until(
        Duration::from_secs(30),
        "migration 3 sleeping on the server",
        || {
            psql(
                &db.url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()",
            ) != "0"
        },
    );
    psql(
        &db.url,
        "UPDATE _migrations_lease SET holder = 'intruder', fence = fence + 1, \
         expires_at = now() + INTERVAL '5 minutes'",
    );
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(12);
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
    assert_eq!(effects(&db), "1,2");
    // 4.. were in the same flight and never ran a statement; 3 ran (once, or again after a
    // serialization failure against the takeover) and rolled back.
    let ran = counts(&db, "ran", 6);
    assert!(ran.starts_with("1:1,2:1,3:"), "{ran}");
    assert!(ran.ends_with(",4:0,5:0,6:0"), "{ran}");
    assert!(!ran.contains("3:0"), "{ran}");
    assert_eq!(versions_of(&out, "migration.applied"), vec![1, 2]);
}

/// An undo that raises while the table `refuse` has a row (plpgsql).
const REFUSE: &str = "DO $$ BEGIN IF EXISTS (SELECT 1 FROM refuse) THEN \
                      RAISE EXCEPTION 'undo refused'; END IF; END $$;";

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains; the refusal is plpgsql"
)]
fn a_rollback_chain_stops_at_a_failing_undo_before_the_next_one_runs() {
    let db = chain_db("chain_down_fail", 8);
    psql(
        &db.url,
        "CREATE TABLE refuse (x INT); INSERT INTO refuse VALUES (1);",
    );
    let dir = files(
        8,
        |_| String::new(),
        |v| if v == 5 { REFUSE.into() } else { String::new() },
    );
    run_on(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = run_on(&db, dir.path(), &["rollback", "--target", "0"]);
    out.expect_code(30);
    // 8, 7, 6 rolled back; 5's undo ran and rolled back; 4.. never ran a statement.
    assert_eq!(counts(&db, "undone", 8), expect(8, |v| i64::from(v >= 5)));
    assert_eq!(
        ledger_rows(&db),
        "1:applied,2:applied,3:applied,4:applied,5:applied"
    );
    assert_eq!(effects(&db), "1,2,3,4,5");
    assert_eq!(versions_of(&out, "migration.rolled_back"), vec![8, 7, 6]);
    assert_eq!(versions_of(&out, "migration.failed"), vec![5]);
    assert!(out.stderr.contains("undo refused"), "{}", out.stderr);
    // Once allowed, the rest rolls back, each undo once more for 5 and once for the others.
    psql(&db.url, "DELETE FROM refuse");
    run_on(&db, dir.path(), &["rollback", "--target", "0"]).expect_code(0);
    assert_eq!(
        counts(&db, "undone", 8),
        expect(8, |v| if v == 5 { 2 } else { 1 })
    );
    assert_eq!(ledger_rows(&db), "");
    assert_eq!(effects(&db), "");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates 40001 with plpgsql"
)]
fn a_40001_in_an_undo_resumes_the_rollback_chain_there() {
    let db = chain_db("chain_down_retry", 8);
    psql(&db.url, "CREATE SEQUENCE attempts");
    let dir = files(
        8,
        |_| String::new(),
        |v| if v == 6 { fail_until(3) } else { String::new() },
    );
    run_on(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = run_on(&db, dir.path(), &["rollback", "--target", "0"]);
    out.expect_code(0);
    assert_eq!(
        counts(&db, "undone", 8),
        expect(8, |v| if v == 6 { 3 } else { 1 })
    );
    assert_eq!(ledger_rows(&db), "");
    assert_eq!(effects(&db), "");
    assert_eq!(versions_of(&out, "migration.retry"), vec![6, 6]);
    let down: Vec<i64> = (1..=8).rev().collect();
    assert_eq!(versions_of(&out, "migration.rolled_back"), down);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn a_stop_mid_chain_lets_the_step_in_flight_finish_and_starts_nothing_after_it() {
    let db = chain_db("chain_stop", 6);
    let dir = files(
        6,
        |v| {
            if v == 2 {
                "SELECT pg_sleep(1);".into()
            } else {
                String::new()
            }
        },
        |_| String::new(),
    );
    let run = Background::spawn(
        support::fixtures::cmd(&db.url, dir.path(), HOLDER, "10s")
            .env("MIGRATE_SHUTDOWN_GRACE", "20s")
            .arg("migrate"),
    );
    wait_until(
        Duration::from_secs(30),
        "migration 2 sleeping on the server",
        || {
            psql(
                &db.url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%pg_sleep(1)%' AND pid <> pg_backend_pid()",
            ) != "0"
        },
    );
    run.signal("TERM");
    let out = run.wait(Duration::from_secs(30));
    out.expect_code(143);
    // 3.. were in the same flight: their guards refused before any statement ran.
    assert_eq!(counts(&db, "ran", 6), "1:1,2:1,3:0,4:0,5:0,6:0");
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
    assert_eq!(versions_of(&out, "migration.started"), vec![1, 2]);
    assert_eq!(versions_of(&out, "migration.applied"), vec![1, 2]);
    assert!(!out.has_event("migration.failed"), "{}", out.stdout);
    // The stop lock was let go: the next run goes on from 3 at once.
    run_on(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(counts(&db, "ran", 6), expect(6, |_| 1));
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn a_lock_timeout_in_migration_k_resumes_the_chain_at_k_once_the_lock_is_gone() {
    let db = chain_db("chain_lock", 5);
    psql(&db.url, "CREATE TABLE held (id INT)");
    let mut holder = OpenTx::begin(&db.url, "LOCK TABLE held IN ACCESS EXCLUSIVE MODE");
    let dir = files(
        5,
        |v| {
            if v == 3 {
                "INSERT INTO held VALUES (3);".into()
            } else {
                String::new()
            }
        },
        |_| String::new(),
    );
    let run = Background::spawn(
        support::fixtures::cmd(&db.url, dir.path(), HOLDER, "10s")
            .env("MIGRATE_LOCK_TIMEOUT", "200ms")
            .env("MIGRATE_LOCK_RETRIES", "100")
            .arg("migrate"),
    );
    wait_until(Duration::from_secs(30), "a lock-timeout retry", || {
        run.has_logged("migration.retry")
    });
    holder.commit();
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(0);
    let retries = out.events_named("migration.retry");
    assert!(!retries.is_empty());
    for e in &retries {
        assert_eq!(field(e, "version").as_i64(), Some(3), "{e}");
        assert_eq!(field(e, "sqlstate").as_str(), Some("55P03"), "{e}");
    }
    // 1, 2 committed before the first timeout and never ran again; 4, 5 ran once, after 3.
    let tries = retries.len() as i64 + 1;
    assert_eq!(
        counts(&db, "ran", 5),
        expect(5, |v| if v == 3 { tries } else { 1 })
    );
    assert_eq!(effects(&db), "1,2,3,4,5");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM held"), "1");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn chains_in_schemas_of_one_database_never_meet_each_others_stop_lock() {
    // Every schema's first lease has fence 1: the stop lock is keyed by the ledger too, so the
    // guards of runs side by side (a fleet of schemas) never take each other's for a stop.
    const SCHEMAS: usize = 4;
    const N: i64 = 40;
    let db = fresh_db("chain_schemas");
    let dir = files(N, |_| String::new(), |_| String::new());
    let urls: Vec<String> = (0..SCHEMAS)
        .map(|k| {
            let counters: String = (1..=N)
                .map(|v| format!("CREATE SEQUENCE s{k}.ran_{v}; CREATE SEQUENCE s{k}.undone_{v};"))
                .collect();
            psql(
                &db.url,
                &format!("CREATE SCHEMA s{k}; CREATE TABLE s{k}.effects (version INT8 NOT NULL); {counters}"),
            );
            format!("{}&options=-csearch_path%3Ds{k}", db.url)
        })
        .collect();
    let runs: Vec<Background> = urls
        .iter()
        .map(|url| {
            Background::spawn(support::fixtures::cmd(url, dir.path(), HOLDER, "10s").arg("migrate"))
        })
        .collect();
    for (k, run) in runs.into_iter().enumerate() {
        let out = run.wait(Duration::from_secs(60));
        assert_eq!(out.code, 0, "schema s{k}\n{}\n{}", out.stdout, out.stderr);
        assert_eq!(
            psql(
                &urls[k],
                "SELECT count(*) FROM _migrations WHERE status = 'applied'"
            ),
            N.to_string()
        );
        assert_eq!(
            psql(&urls[k], "SELECT count(*) FROM effects"),
            N.to_string()
        );
    }
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB never chains"
)]
fn another_schemas_stop_lock_held_does_not_stop_a_chain() {
    let db = fresh_db("chain_other_stop");
    let dir = files(6, |_| String::new(), |_| String::new());
    let url = |k: usize| format!("{}&options=-csearch_path%3Ds{k}", db.url);
    for k in 0..2 {
        let counters: String = (1..=6)
            .map(|v| format!("CREATE SEQUENCE s{k}.ran_{v}; CREATE SEQUENCE s{k}.undone_{v};"))
            .collect();
        psql(
            &db.url,
            &format!(
                "CREATE SCHEMA s{k}; CREATE TABLE s{k}.effects (version INT8 NOT NULL); {counters}"
            ),
        );
    }
    run(support::fixtures::cmd(&url(1), dir.path(), HOLDER, "10s").arg("migrate")).expect_code(0);
    // Schema s1's run stopping, as its lease's connection would hold the lock (fence 1, as
    // the first lease of s0 will have too).
    let _held = OpenTx::begin(
        &url(1),
        "SELECT pg_advisory_lock(('_migrations'::regclass::oid::INT8 - 2147483648)::INT4, 1)",
    );
    let out = run(support::fixtures::cmd(&url(0), dir.path(), HOLDER, "10s").arg("migrate"));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(psql(&url(0), "SELECT count(*) FROM effects"), "6");
}

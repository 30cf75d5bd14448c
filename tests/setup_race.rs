//! Concurrent first runs on a fresh database. Setting up the bookkeeping (creating
//! `_migrations` and `_migrations_lease`, inserting the lease row, adopting a three-column ledger,
//! `MIGRATE_CREATE_DATABASE`) must survive any number of concurrent runners: a lost race is
//! re-checked, never exit 30; every other setup error still fails.
//!
//! The deterministic tests need no timing luck: another session holds the conflicting
//! statement in an open transaction, `migrate` is started and seen *blocked* behind it in
//! `pg_stat_activity`, then the session commits and `migrate` must carry on to exit 0. The
//! many-runner test runs 20 runners on each of several fresh databases while two threads keep
//! the CPUs busy. Every migration writes its version into a side-effect table `effects`, so
//! "applied exactly once" is read from the database, not from the tool's own ledger.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::*;
use tempfile::TempDir;

/// The ledger's columns exactly as `src/store/setup.rs` creates them.
const LEDGER_COLUMNS: &str = "version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), checksum TEXT, duration_ms BIGINT, \
     applied_by TEXT, fence BIGINT, status TEXT NOT NULL DEFAULT 'applied', \
     statements_done BIGINT NOT NULL DEFAULT 0, undo_sql TEXT, undo_no_transaction BOOLEAN, \
     undo_checksum TEXT";
/// The lease table's columns exactly as `src/store/setup.rs` creates them.
const LEASE_COLUMNS: &str = "id INT8 PRIMARY KEY, holder TEXT, fence INT8 NOT NULL DEFAULT 0, \
     expires_at TIMESTAMPTZ, acquired_at TIMESTAMPTZ";
/// A three-column ledger made by an older client, `version` an int4 as PostgreSQL reads `INTEGER`.
const OLDER_LEDGER_COLUMNS: &str = "version INTEGER PRIMARY KEY, description TEXT NOT NULL, \
     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()";

/// How long a held session, a blocked run or a run may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);
/// Migrations per directory.
const N: i64 = 3;

/// A migrations directory with versions `1..=N`, each writing its version into `effects`.
fn migrations() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=N {
        fs::write(
            dir.path().join(format!("{v}_m{v}.sql")),
            format!(
                "INSERT INTO effects (version) VALUES ({v});\n-- @UNDO\nDELETE FROM effects WHERE version = {v};\n"
            ),
        )
        .expect("write migration");
    }
    dir
}

/// A fresh database holding the side-effect table.
fn db_with_effects(tag: &str) -> TestDb {
    let db = fresh_db(tag);
    psql(&db.url, "CREATE TABLE effects (version INT8 NOT NULL)");
    db
}

/// `migrate` on `url` with short waits.
fn migrate(url: &str, dir: &Path, holder: &str) -> Command {
    let mut c = bin_at(url, dir);
    c.arg("migrate")
        .env("MIGRATE_HOLDER", holder)
        .env("MIGRATE_WAIT_TIMEOUT", "30s")
        .env("MIGRATE_LEASE_TIMEOUT", "60s");
    c
}

/// Versions applied a number of times other than once, as `version:count`, plus versions of
/// `expected` never applied; empty when every expected version ran exactly once.
fn not_once(db_url: &str, expected: &[i64]) -> String {
    let list = expected
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",");
    psql(
        db_url,
        &format!(
            "SELECT coalesce(string_agg(format('%s:%s', v, n), ',' ORDER BY v), '') FROM (
               SELECT coalesce(e.version, x.v) AS v, count(e.version) AS n
               FROM unnest(ARRAY[{list}]::INT8[]) AS x(v)
               FULL JOIN effects e ON e.version = x.v
               GROUP BY 1) c
             WHERE n <> 1 OR v <> ALL (ARRAY[{list}]::INT8[])"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// A session holding a transaction open, and a run in the background
// ---------------------------------------------------------------------------------------------

/// A `psql` session fed through its stdin, holding an open transaction.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    app: String,
}

impl Held {
    /// Runs `BEGIN; <sql>` in a new session on `db` and returns once the server shows that
    /// session idle in its transaction after `sql` (the locks it took are held).
    fn begin(db: &TestDb, tag: &str, sql: &str) -> Held {
        let app = format!("race_holder_{tag}");
        let sep = if db.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}application_name={app}", db.url);
        let psql_bin = pg_bindir()
            .map(|d| d.join("psql"))
            .unwrap_or_else(|| PathBuf::from("psql"));
        let mut cmd = Command::new(psql_bin);
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", &url])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for var in [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
            "PGSERVICE",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().expect("spawn psql");
        let mut stdin = child.stdin.take().expect("psql stdin");
        // The last statement marks the point where everything before it has run.
        writeln!(stdin, "BEGIN;\n{sql}\nSELECT 'race-held';").expect("feed psql");
        stdin.flush().expect("flush psql stdin");
        let held = Held {
            child,
            stdin: Some(stdin),
            url: db.url.clone(),
            app,
        };
        let probe = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = {} \
             AND state = 'idle in transaction' AND query = 'SELECT ''race-held'';'",
            quote_literal(&held.app)
        );
        wait_until(
            DEADLINE,
            "the other session to hold its transaction",
            || psql(&held.url, &probe) == "1",
        );
        held
    }

    /// Commits the held transaction and waits for the session to end cleanly.
    fn commit(mut self) {
        let mut stdin = self.stdin.take().expect("stdin still open");
        writeln!(stdin, "COMMIT;").expect("feed psql");
        drop(stdin); // EOF: psql exits after the COMMIT
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for psql") {
                assert!(
                    status.success(),
                    "the holding session's COMMIT failed: {status}"
                );
                return;
            }
            assert!(t0.elapsed() < DEADLINE, "psql did not exit after COMMIT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits until a `crdb-migrate` backend in `db` waits on a lock; panics with the run's output
/// when it exits first.
fn wait_blocked(db: &TestDb, run: &mut Background, what: &str) {
    let probe = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND application_name = 'crdb-migrate' AND wait_event_type = 'Lock'";
    let mut exited = false;
    wait_until(DEADLINE, what, || {
        exited = run.exited();
        exited || count(db, probe) > 0
    });
    if exited {
        let o = run.output(-1);
        let (o, e) = (o.stdout, o.stderr);
        panic!(
            "migrate ended before it blocked ({what})\n--- stdout ---\n{o}\n--- stderr ---\n{e}"
        );
    }
}

/// The deterministic race: `prepare` (committed), then another session holds `BEGIN; held`;
/// `migrate` starts and blocks behind it; the session commits; `migrate` must exit 0 with
/// every migration applied exactly once.
fn race_behind(tag: &str, prepare: &str, held: &str) -> (TestDb, Output) {
    let db = db_with_effects(tag);
    if !prepare.is_empty() {
        psql(&db.url, prepare);
    }
    let dir = migrations();
    let holder = Held::begin(&db, tag, held);
    let mut run = Background::spawn(&mut migrate(&db.url, dir.path(), tag));
    wait_blocked(&db, &mut run, &format!("migrate to block behind `{held}`"));
    holder.commit();
    let out = run.wait(DEADLINE);
    out.expect_code(0);
    (db, out)
}

fn all_versions() -> Vec<i64> {
    (1..=N).collect()
}

// ---------------------------------------------------------------------------------------------
// Deterministic races
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: watches lock waits in pg_stat_activity"
)]
fn a_ledger_created_by_a_peer_while_migrate_creates_it_is_a_lost_race_not_exit_30() {
    let (db, out) = race_behind(
        "race_ledger",
        "",
        &format!("CREATE TABLE \"_migrations\" ({LEDGER_COLUMNS});"),
    );
    assert_eq!(not_once(&db.url, &all_versions()), "");
    assert_eq!(count(&db, "SELECT count(*) FROM _migrations"), N);
    // The loser saw the catalog's unique index (23505) and re-checked.
    assert!(out.has_event("setup.race"), "{}", out.stdout);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: watches lock waits in pg_stat_activity"
)]
fn a_lease_table_created_by_a_peer_while_migrate_creates_it_is_a_lost_race() {
    let (db, out) = race_behind(
        "race_lease_table",
        "",
        &format!("CREATE TABLE \"_migrations_lease\" ({LEASE_COLUMNS});"),
    );
    assert_eq!(not_once(&db.url, &all_versions()), "");
    // The race on the batch's second statement rolled back its first; the re-run made both,
    // and the row the peer did not insert.
    assert_eq!(count(&db, "SELECT count(*) FROM _migrations_lease"), 1);
    assert!(out.has_event("setup.race"), "{}", out.stdout);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: watches lock waits in pg_stat_activity"
)]
fn a_lease_row_inserted_by_a_peer_while_migrate_inserts_it_is_no_error() {
    let prepare = format!(
        "CREATE TABLE \"_migrations\" ({LEDGER_COLUMNS}); CREATE TABLE \"_migrations_lease\" ({LEASE_COLUMNS});"
    );
    let (db, _) = race_behind(
        "race_lease_row",
        &prepare,
        "INSERT INTO _migrations_lease (id, fence) VALUES (1, 0);",
    );
    assert_eq!(not_once(&db.url, &all_versions()), "");
    assert_eq!(count(&db, "SELECT count(*) FROM _migrations_lease"), 1);
    assert_eq!(count(&db, "SELECT fence FROM _migrations_lease"), 1);
}

/// A three-column ledger holding version 1 (applied by the older tool).
fn older_ledger() -> String {
    format!(
        "CREATE TABLE \"_migrations\" ({OLDER_LEDGER_COLUMNS}); \
         INSERT INTO _migrations (version, description) VALUES (1, 'm1');"
    )
}

/// After adoption: every column ours, `version` a bigint, the old rows kept.
fn assert_adopted(db: &TestDb) {
    assert_eq!(
        psql(
            &db.url,
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = '_migrations' AND column_name = 'version'"
        ),
        "bigint"
    );
    assert_eq!(
        count(
            db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = '_migrations'"
        ),
        12,
        "the three seed columns, six of ours and the three of the stored undo"
    );
    assert_eq!(count(db, "SELECT count(*) FROM _migrations"), N);
    // Version 1 was the older client's: not run again.
    assert_eq!(not_once(&db.url, &[2, 3]), "");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: watches lock waits in pg_stat_activity"
)]
fn adopting_while_a_peer_adds_a_column_carries_on() {
    let (db, out) = race_behind(
        "race_adopt_column",
        &older_ledger(),
        "ALTER TABLE _migrations ADD COLUMN checksum TEXT;",
    );
    assert_adopted(&db);
    assert!(out.has_event("ledger.adopted"), "{}", out.stdout);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: watches lock waits in pg_stat_activity"
)]
fn adopting_while_a_peer_widens_the_version_carries_on() {
    let (db, _) = race_behind(
        "race_adopt_widen",
        &older_ledger(),
        "ALTER TABLE _migrations ALTER COLUMN version TYPE BIGINT;",
    );
    assert_adopted(&db);
}

// ---------------------------------------------------------------------------------------------
// Everything else still fails
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: relies on PostgreSQL 15's public schema grants"
)]
fn no_permission_to_create_the_ledger_is_still_exit_30_and_says_so() {
    let db = db_with_effects("race_no_create");
    let role = format!("race_nocreate_{}", std::process::id());
    // PostgreSQL 15 gives PUBLIC no CREATE on the public schema: this role may only read.
    psql(
        &db.url,
        &format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT ALL ON effects TO {role};"
        ),
    );
    let url = db
        .url
        .replacen(&format!("{}@", server().user()), &format!("{role}@"), 1);
    assert_ne!(url, db.url, "the URL names the role");
    let dir = migrations();
    let out = run(&mut migrate(&url, dir.path(), "no_create"));
    out.expect_code(30);
    assert!(
        out.stderr.contains("permission denied") && out.stderr.contains("_migrations"),
        "a clear message naming the table: {}",
        out.stderr
    );
    assert!(!out.has_event("setup.race"), "not taken for a race");
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 0);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: a type named like the lease table clashes only there"
)]
fn a_type_already_named_like_the_lease_table_fails_after_bounded_rechecks() {
    let db = db_with_effects("race_type_clash");
    // Not a race: this 42710 ("type already exists": an enum has no relation of its name, so
    // IF NOT EXISTS does not skip) comes back on every re-check.
    psql(&db.url, "CREATE TYPE _migrations_lease AS ENUM ('x')");
    let dir = migrations();
    let t0 = Instant::now();
    let out = run(&mut migrate(&db.url, dir.path(), "type_clash"));
    out.expect_code(30);
    assert!(
        out.stderr.contains("\"_migrations_lease\" already exists"),
        "the server's message: {}",
        out.stderr
    );
    assert_eq!(
        out.events_named("setup.race").len(),
        11,
        "ten re-checks, then one warning: {}",
        out.stdout
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert_eq!(count(&db, "SELECT count(*) FROM effects"), 0);
}

// ---------------------------------------------------------------------------------------------
// Many runners
// ---------------------------------------------------------------------------------------------

/// Threads keeping the CPUs busy until dropped (and at most `limit`).
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Busy {
    fn start(n: usize, limit: Duration) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) && t0.elapsed() < limit {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                    x
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Starts `runners` copies of `cmd()` at once (a barrier) and returns their outputs.
fn at_once(runners: usize, cmd: impl Fn(usize) -> Command) -> Vec<Output> {
    let barrier = Arc::new(Barrier::new(runners));
    let handles: Vec<_> = (0..runners)
        .map(|i| {
            let mut c = cmd(i);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                run_with_deadline(&mut c, Duration::from_secs(120))
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("runner thread"))
        .collect()
}

/// The last line of stderr (the error), for a failure summary.
fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn twenty_runners_on_fresh_databases_with_busy_cpus_all_exit_0() {
    const RUNNERS: usize = 20;
    const DATABASES: usize = 6;
    let dir = migrations();
    let _busy = Busy::start(2, Duration::from_secs(300));
    let mut failures = Vec::new();
    let mut races = 0;
    for d in 0..DATABASES {
        let db = db_with_effects(&format!("race_many_{d}"));
        let outs = at_once(RUNNERS, |i| {
            migrate(&db.url, dir.path(), &format!("runner-{d}-{i}"))
        });
        for (i, o) in outs.iter().enumerate() {
            races += o.events_named("setup.race").len();
            if o.code != 0 {
                failures.push(format!(
                    "db {d} runner {i}: exit {}: {}",
                    o.code,
                    last_line(&o.stderr)
                ));
            }
        }
        assert_eq!(not_once(&db.url, &all_versions()), "", "database {d}");
        assert_eq!(count(&db, "SELECT count(*) FROM _migrations"), N);
        assert_eq!(count(&db, "SELECT count(*) FROM _migrations_lease"), 1);
    }
    eprintln!(
        "{} runs, {} failed, {races} setup races re-checked",
        RUNNERS * DATABASES,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        RUNNERS * DATABASES,
        failures.join("\n")
    );
}

#[test]
fn ten_runners_creating_the_same_database_all_exit_0() {
    const RUNNERS: usize = 10;
    let name = format!("race_created_{}", std::process::id());
    let url = server().admin_url(&name);
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("1_effects.sql"),
        "CREATE TABLE effects (version INT8 NOT NULL);\nINSERT INTO effects (version) VALUES (1);\n",
    )
    .expect("write migration");
    for v in 2..=N {
        fs::write(
            dir.path().join(format!("{v}_m{v}.sql")),
            format!("INSERT INTO effects (version) VALUES ({v});\n"),
        )
        .expect("write migration");
    }
    let outs = at_once(RUNNERS, |i| {
        let mut c = migrate(&url, dir.path(), &format!("creator-{i}"));
        c.env("MIGRATE_CREATE_DATABASE", "true");
        c
    });
    let failures: Vec<String> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.code != 0)
        .map(|(i, o)| format!("runner {i}: exit {}: {}", o.code, last_line(&o.stderr)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(outs.iter().any(|o| o.has_event("db.created")));
    assert_eq!(not_once(&url, &all_versions()), "");
    assert_eq!(
        psql(&url, "SELECT count(*) FROM _migrations"),
        N.to_string()
    );
}

//! CockroachDB's execution model through the real binary, on both servers:
//! - on PostgreSQL, every database is dressed as CockroachDB (`support::dressed`: `version()`
//!   says CockroachDB, `crdb_internal` readable), so the binary takes its CockroachDB branches,
//!   and PostgreSQL is made to raise CockroachDB's codes: 40001 from a `DO` block, XXA00 at
//!   COMMIT from a deferred constraint trigger;
//! - on a real CockroachDB (`cockroach` on PATH), the portable tests run as they are, and the
//!   tests at the end produce each behaviour by CockroachDB's own mechanism (a real XXA00 from
//!   `CREATE UNIQUE INDEX` over duplicate rows, a real 40001 from a concurrent writer, a paused
//!   job, a missing database, `allow_unsafe_internals = off`, a READ COMMITTED role, a non-admin
//!   user, a `schema_locked` table). The imitations themselves need PostgreSQL (plpgsql,
//!   sequences, triggers): they skip there.
//!
//! Also ordering, drift, `repair`, repeat-until-zero batches, `@NO_TRANSACTION` journaling and
//! resume, the CockroachDB lint through `verify` and `plan --json`, and the statement timeout.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::dressed::{self, Gate};
use support::fixtures::ledger_rows;
use support::*;
use tempfile::TempDir;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write migration file");
}

/// Runs the binary against `db` with `dir` and extra environment `env`.
fn crdb_env(db: &TestDb, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = bin_at(&db.url, dir);
    cmd.env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_HOLDER", "semantics-test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd.args(args))
}

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    crdb_env(db, dir, &[], args)
}

/// A database for one test: on PostgreSQL dressed as CockroachDB (so the binary takes its
/// CockroachDB branches), on CockroachDB a plain one.
fn semantics_db(tag: &str) -> TestDb {
    let db = fresh_db(tag);
    if server().flavour() == Flavour::Postgres {
        dressed::dress(&db.url, &db.name, Gate::Readable);
    }
    db
}

/// True on a real CockroachDB (the tests of its own mechanisms need one).
fn on_cockroach() -> bool {
    server().flavour() == Flavour::Cockroach
}

/// `status|statements_done` of a version's row, or empty when it has none.
fn row_state(db: &TestDb, version: i64) -> String {
    psql(
        &db.url,
        &format!(
            "SELECT status || '|' || statements_done FROM _migrations WHERE version = {version}"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// 40001: replay with backoff, bounded.
// ---------------------------------------------------------------------------------------------

/// Raises 40001 while the (non-transactional) sequence `attempts` is below `n`.
fn fail_until(n: u32) -> String {
    format!(
        "SELECT nextval('attempts');\n\
         DO $$ BEGIN IF currval('attempts') < {n} THEN \
         RAISE EXCEPTION 'restart transaction: TransactionRetryWithProtoRefreshError' USING ERRCODE = '40001'; \
         END IF; END $$;\n"
    )
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn serialization_failures_twice_then_success_replays_and_applies_once() {
    let db = semantics_db("retry_then_ok");
    psql(
        &db.url,
        "CREATE SEQUENCE attempts; CREATE TABLE effects (n INT);",
    );
    let body = format!(
        "CREATE TABLE made (id INT);\nINSERT INTO effects VALUES (1);\n{}-- @UNDO\nDROP TABLE made;\n",
        fail_until(3)
    );
    let dir = dir_with(&[("1_retried.sql", body.as_bytes())]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    // Three attempts ran; the first two were rolled back entirely.
    assert_eq!(psql(&db.url, "SELECT last_value FROM attempts"), "3");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM effects"), "1");
    assert!(table_exists(&db, "made"));
    assert_eq!(ledger_rows(&db), "1:applied");
    let retries = out.events_named("migration.retry");
    assert_eq!(retries.len(), 2, "{}", out.stdout);
    for (k, e) in retries.iter().enumerate() {
        assert_eq!(field(e, "attempt").as_u64(), Some(k as u64 + 1), "{e}");
        assert_eq!(field(e, "sqlstate").as_str(), Some("40001"), "{e}");
        assert_eq!(field(e, "version").as_i64(), Some(1), "{e}");
        assert!(field(e, "delay_ms").as_u64().is_some(), "{e}");
    }
    assert_eq!(out.events_named("migration.applied").len(), 1);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn serialization_failures_forever_exhaust_retries_with_exit_13_and_record_nothing() {
    let db = semantics_db("retry_forever");
    psql(
        &db.url,
        "CREATE SEQUENCE attempts; CREATE TABLE effects (n INT);",
    );
    let body = format!(
        "INSERT INTO effects VALUES (1);\n{}-- @UNDO\nSELECT 1;\n",
        fail_until(i32::MAX as u32)
    );
    let dir = dir_with(&[("1_never.sql", body.as_bytes())]);
    let t0 = Instant::now();
    let out = crdb(&db, dir.path(), &["migrate"]);
    let elapsed = t0.elapsed();
    out.expect_code(13);
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert_eq!(
        out.events_named("migration.retry").len(),
        9,
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("40001"), "{}", out.stderr);
    assert_eq!(psql(&db.url, "SELECT last_value FROM attempts"), "10");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM effects"), "0");
    assert_eq!(ledger_rows(&db), "");
}

/// A table `deferred` whose inserts raise `code` at COMMIT (a deferred constraint trigger) while
/// the sequence `commits` is below `below`.
fn raise_at_commit(code: &str, below: u32) -> String {
    format!(
        "CREATE SEQUENCE commits; CREATE TABLE deferred (id INT);
         CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('commits') < {below} THEN
             RAISE EXCEPTION 'raised at COMMIT' USING ERRCODE = '{code}';
           END IF;
           RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON deferred
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit();"
    )
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn serialization_failure_at_commit_is_replayed_too() {
    let db = semantics_db("retry_at_commit");
    psql(&db.url, &raise_at_commit("40001", 3));
    let dir = dir_with(&[(
        "1_commit.sql",
        "CREATE TABLE made (id INT);\nINSERT INTO deferred VALUES (1);\n-- @UNDO\nDROP TABLE made;\n".as_bytes(),
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.retry").len(),
        2,
        "{}",
        out.stdout
    );
    assert_eq!(psql(&db.url, "SELECT last_value FROM commits"), "3");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM deferred"), "1");
    assert_eq!(ledger_rows(&db), "1:applied");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn statement_completion_unknown_at_commit_is_never_retried_and_marks_dirty() {
    let db = semantics_db("c40003_at_commit");
    psql(&db.url, &raise_at_commit("40003", i32::MAX as u32));
    let dir = dir_with(&[(
        "1_commit.sql",
        "CREATE TABLE made (id INT);\nINSERT INTO deferred VALUES (1);\n-- @UNDO\nDROP TABLE made;\n".as_bytes(),
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(31);
    assert!(
        out.stderr.contains("SQLSTATE 40003 at COMMIT"),
        "{}",
        out.stderr
    );
    assert_eq!(out.events_named("migration.retry").len(), 0);
    assert_eq!(
        psql(&db.url, "SELECT last_value FROM commits"),
        "1",
        "one attempt"
    );
    assert_eq!(row_state(&db, 1), "dirty|0");
    crdb(&db, dir.path(), &["migrate"]).expect_code(32);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn a_no_transaction_statement_exhausting_its_retries_is_journaled_and_resumed() {
    let db = semantics_db("nt_retry_exhausted");
    psql(
        &db.url,
        "CREATE SEQUENCE attempts; CREATE TABLE effects (n INT);",
    );
    // Statement 2 raises 40001 on its first 12 runs: 10 attempts in the first run, 3 in the next.
    let dir = dir_with(&[(
        "1_nt.sql",
        "-- @NO_TRANSACTION\nINSERT INTO effects VALUES (1);\n\
         DO $$ BEGIN IF nextval('attempts') <= 12 THEN \
         RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001'; END IF; END $$;\n\
         INSERT INTO effects VALUES (3);\n-- @UNDO\nDELETE FROM effects;\n"
            .as_bytes(),
    )]);
    let t0 = Instant::now();
    let out = crdb(&db, dir.path(), &["migrate"]);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    // Transient, not dirty: the statement never took effect and the journal says where to
    // resume, so the Job may retry (exit 13, Count).
    out.expect_code(13);
    assert_eq!(
        out.events_named("migration.retry").len(),
        9,
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("40001"), "{}", out.stderr);
    assert!(out.stderr.contains("migration 1"), "{}", out.stderr);
    assert_eq!(row_state(&db, 1), "dirty|1");
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.retry").len(),
        2,
        "{}",
        out.stdout
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM effects"
        ),
        "1,3"
    );
    assert_eq!(psql(&db.url, "SELECT last_value FROM attempts"), "13");
    assert_eq!(row_state(&db, 1), "applied|3");
}

/// After a first run made the ledger: its first `n` writes raise 40001 (a trigger on it).
const LEDGER_CONFLICTS: &str = "
CREATE SEQUENCE ledger_writes;
CREATE FUNCTION ledger_conflict() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('ledger_writes') <= 2 THEN
    RAISE EXCEPTION 'restart transaction: WriteTooOldError' USING ERRCODE = '40001';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ledger_conflict BEFORE INSERT OR UPDATE OR DELETE ON _migrations
  FOR EACH ROW EXECUTE FUNCTION ledger_conflict();
";

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn serialization_failures_on_the_ledger_write_replay_the_migration() {
    let db = semantics_db("retry_ledger_tx");
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    psql(&db.url, "CREATE TABLE effects (n INT);");
    psql(&db.url, LEDGER_CONFLICTS);
    write(
        dir.path(),
        "2_b.sql",
        "CREATE TABLE b (id INT);\nINSERT INTO effects VALUES (2);\n-- @UNDO\nDROP TABLE b;\n",
    );
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.retry").len(),
        2,
        "{}",
        out.stdout
    );
    assert_eq!(psql(&db.url, "SELECT count(*) FROM effects"), "1");
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn serialization_failures_on_the_no_transaction_journal_are_replayed() {
    let db = semantics_db("retry_ledger_nt");
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    psql(&db.url, "CREATE TABLE effects (n INT);");
    psql(&db.url, LEDGER_CONFLICTS);
    write(
        dir.path(),
        "2_nt.sql",
        "-- @NO_TRANSACTION\nINSERT INTO effects VALUES (1);\nINSERT INTO effects VALUES (2);\n\
         -- @UNDO\nDELETE FROM effects;\n",
    );
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.retry").len(),
        2,
        "{}",
        out.stdout
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM effects"
        ),
        "1,2",
        "each statement ran once"
    );
    assert_eq!(row_state(&db, 2), "applied|2");
    // The undo's journal and row removal are replayed the same way.
    psql(&db.url, "ALTER SEQUENCE ledger_writes RESTART");
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.retry").len(),
        2,
        "{}",
        out.stdout
    );
    assert_eq!(ledger_rows(&db), "1:applied");
}

// ---------------------------------------------------------------------------------------------
// XXA00 at COMMIT: dirty mark, exit 31, refusal 32, repair.
// ---------------------------------------------------------------------------------------------

/// A table `guarded` whose inserts raise XXA00 at COMMIT, through a deferred constraint trigger.
const XXA00_AT_COMMIT: &str = "
CREATE TABLE guarded (id INT);
CREATE FUNCTION schema_change_aborted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'transaction committed but schema change aborted with error: (42P01)'
    USING ERRCODE = 'XXA00';
END $$;
CREATE CONSTRAINT TRIGGER abort_at_commit AFTER INSERT ON guarded
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION schema_change_aborted();
";

/// Replaces the trigger function with a harmless one.
const FIX_TRIGGER: &str = "CREATE OR REPLACE FUNCTION schema_change_aborted() RETURNS trigger \
     LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;";

fn xxa00_set() -> TempDir {
    dir_with(&[
        (
            "1_widgets.sql",
            "CREATE TABLE widgets (id INT);\nINSERT INTO guarded VALUES (1);\n-- @UNDO\nDROP TABLE widgets;\n".as_bytes(),
        ),
        (
            "2_gadgets.sql",
            "CREATE TABLE gadgets (id INT);\n-- @UNDO\nDROP TABLE gadgets;\n".as_bytes(),
        ),
    ])
}

/// Runs the XXA00 set once: exit 31, version 1 dirty, version 2 not tried; then a rerun is 32.
fn xxa00_until_refused(db: &TestDb, dir: &Path) {
    psql(&db.url, XXA00_AT_COMMIT);
    let out = crdb(db, dir, &["migrate"]);
    out.expect_code(31);
    assert!(
        out.stderr.contains("SQLSTATE XXA00 at COMMIT"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("crdb-migrate repair --version 1 --mark-applied"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.events_named("migration.retry").len(),
        0,
        "XXA00 is never retried"
    );
    assert_eq!(
        out.events_named("migration.dirty").len(),
        1,
        "{}",
        out.stdout
    );
    assert_eq!(row_state(db, 1), "dirty|0");
    assert!(
        !table_exists(db, "gadgets"),
        "later migrations are not tried"
    );
    // Next run: refused, naming the version and the repair command.
    for args in [&["migrate"][..], &["rollback"][..]] {
        let again = crdb(db, dir, args);
        again.expect_code(32);
        assert!(again.stderr.contains("version 1"), "{}", again.stderr);
        assert!(again.stderr.contains("dirty"), "{}", again.stderr);
        assert!(
            again
                .stderr
                .contains("crdb-migrate repair --version 1 --mark-applied"),
            "{}",
            again.stderr
        );
    }
    assert_eq!(row_state(db, 1), "dirty|0");
    // status shows it as dirty without failing.
    let s: Value =
        serde_json::from_str(&crdb(db, dir, &["status", "--json"]).stdout).expect("status json");
    assert_eq!(s["dirty"], serde_json::json!([1]));
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn xxa00_at_commit_marks_dirty_then_repair_mark_applied_unblocks() {
    let db = semantics_db("xxa00_mark_applied");
    let dir = xxa00_set();
    xxa00_until_refused(&db, dir.path());
    // The operator checked the change is in place (on CockroachDB the commit happened).
    let out = crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--mark-applied"],
    );
    out.expect_code(0);
    let repairs = out.events_named("repair");
    assert_eq!(repairs.len(), 1, "{}", out.stdout);
    assert_eq!(
        field(&repairs[0], "holder").as_str(),
        Some("semantics-test")
    );
    assert_eq!(
        field(&repairs[0], "previous_status").as_str(),
        Some("dirty")
    );
    assert!(field(&repairs[0], "timestamp").is_string());
    assert_eq!(row_state(&db, 1), "applied|0");
    // Later migrations then apply; version 1 is not re-run.
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 1);
    assert!(table_exists(&db, "gadgets"));
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB's errors with PostgreSQL-only SQL; its real counterpart runs on CockroachDB"
)]
fn xxa00_at_commit_then_repair_mark_not_applied_lets_migrate_reapply() {
    let db = semantics_db("xxa00_not_applied");
    let dir = xxa00_set();
    xxa00_until_refused(&db, dir.path());
    // On PostgreSQL the transaction really was rolled back: nothing remains.
    assert!(!table_exists(&db, "widgets"));
    psql(&db.url, FIX_TRIGGER);
    let out = crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--mark-not-applied"],
    );
    out.expect_code(0);
    assert_eq!(out.events_named("repair").len(), 1, "{}", out.stdout);
    assert_eq!(ledger_rows(&db), "");
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 2);
    assert!(table_exists(&db, "widgets") && table_exists(&db, "gadgets"));
    assert_eq!(psql(&db.url, "SELECT count(*) FROM guarded"), "1");
    assert_eq!(ledger_rows(&db), "1:applied,2:applied");
}

#[test]
fn repair_refuses_what_it_cannot_do() {
    let db = semantics_db("repair_refusals");
    let dir = dir_with(&[(
        "1_a.sql",
        "CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE a;\n".as_bytes(),
    )]);
    // Nothing to mark not applied, no file to mark applied, no row to accept.
    crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--mark-not-applied"],
    )
    .expect_code(20);
    crdb(
        &db,
        dir.path(),
        &["repair", "--version", "9", "--mark-applied"],
    )
    .expect_code(20);
    crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--accept-checksum"],
    )
    .expect_code(20);
    crdb(&db, dir.path(), &["repair", "--version", "1"]).expect_code(20);
    assert_eq!(ledger_rows(&db), "");
}

// ---------------------------------------------------------------------------------------------
// @NO_TRANSACTION: journal, resume, intact statements, undo, duration.
// ---------------------------------------------------------------------------------------------

const FOUR_STEPS: &str = "-- @NO_TRANSACTION
INSERT INTO log VALUES (1);
INSERT INTO log VALUES (2);
INSERT INTO missing VALUES (3);
INSERT INTO log VALUES (4);
SELECT pg_sleep(0.3);
-- @UNDO
DELETE FROM log;
";

#[test]
fn no_transaction_failure_is_journaled_and_the_rerun_resumes_after_the_done_statements() {
    let db = semantics_db("nt_resume");
    psql(&db.url, "CREATE TABLE log (n INT);");
    let dir = dir_with(&[("1_steps.sql", FOUR_STEPS.as_bytes())]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(31);
    assert!(out.stderr.contains("statement 3 of 5"), "{}", out.stderr);
    assert!(out.stderr.contains("line 4"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`INSERT INTO missing VALUES (3)`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("42P01"), "{}", out.stderr);
    assert_eq!(row_state(&db, 1), "dirty|2");
    // Undo SQL is written for a whole migration: rolling back a half-applied one is refused.
    let refused = crdb(&db, dir.path(), &["rollback"]);
    refused.expect_code(32);
    assert!(
        refused.stderr.contains("partly applied"),
        "{}",
        refused.stderr
    );
    assert_eq!(row_state(&db, 1), "dirty|2");
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM log"
        ),
        "1,2"
    );
    // plan shows the resume point.
    let plan = crdb(&db, dir.path(), &["plan", "--json"]);
    plan.expect_code(0);
    let p: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    assert_eq!(p["steps"][0]["resume_from"], 2, "{p}");
    assert_eq!(p["steps"][0]["no_transaction"], true, "{p}");
    // Fixed outside; the rerun resumes at statement 3: statements 1-2 are not run again.
    psql(&db.url, "CREATE TABLE missing (n INT);");
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(n::text, ',' ORDER BY n) FROM log"
        ),
        "1,2,4"
    );
    assert_eq!(
        psql(&db.url, "SELECT string_agg(n::text, ',') FROM missing"),
        "3"
    );
    assert_eq!(row_state(&db, 1), "applied|5");
    let started = out.events_named("migration.started");
    assert!(
        started
            .iter()
            .any(|e| field(e, "resume_after").as_u64() == Some(2)),
        "{}",
        out.stdout
    );
    // The duration is the real one (statement 5 sleeps 300 ms), not 0.
    let ms: i64 = psql(
        &db.url,
        "SELECT duration_ms FROM _migrations WHERE version = 1",
    )
    .parse()
    .expect("duration_ms");
    assert!((300..30_000).contains(&ms), "duration_ms = {ms}");
    let applied = out.events_named("migration.applied");
    assert!(field(&applied[0], "duration_ms").as_u64() >= Some(300));
}

#[test]
fn no_transaction_statements_with_semicolons_in_strings_and_bodies_run_intact() {
    let db = semantics_db("nt_intact");
    let body = r#"-- @NO_TRANSACTION
-- a comment; with a semicolon
CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);
INSERT INTO notes VALUES (1, 'a;b; c'), (2, 'don''t; stop');
INSERT INTO notes VALUES (3, E'it\'s;\n\\;two');
INSERT INTO notes VALUES (4, $tag$ x; y $$ z; $tag$);
/* block; comment */ INSERT INTO notes VALUES (5, 'after /* not a comment; */');
CREATE FUNCTION semi() RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE s TEXT := 'p;q';
BEGIN
  s := s || ';r';
  RETURN s;
END;
$$;
INSERT INTO notes VALUES (6, semi());
INSERT INTO notes SELECT 7, 'last;' || ';'
-- @UNDO
DROP FUNCTION semi();
DROP TABLE notes;
"#;
    let dir = dir_with(&[("1_intact.sql", body.as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(row_state(&db, 1), "applied|8");
    let got = |id: i32| psql(&db.url, &format!("SELECT body FROM notes WHERE id = {id}"));
    assert_eq!(got(1), "a;b; c");
    assert_eq!(got(2), "don't; stop");
    assert_eq!(got(3), "it's;\n\\;two");
    assert_eq!(got(4), "x; y $$ z;");
    assert_eq!(got(5), "after /* not a comment; */");
    assert_eq!(got(6), "p;q;r");
    assert_eq!(got(7), "last;;");
    // The undo runs statement by statement too.
    crdb(&db, dir.path(), &["rollback"]).expect_code(0);
    assert!(!table_exists(&db, "notes"));
    assert_eq!(ledger_rows(&db), "");
}

#[test]
fn no_transaction_undo_failure_marks_dirty_migrate_refuses_and_rollback_resumes() {
    let db = semantics_db("nt_undo");
    let dir = dir_with(&[(
        "1_pair.sql",
        "-- @NO_TRANSACTION\nCREATE TABLE u1 (id INT);\nCREATE TABLE u2 (id INT);\n\
         -- @UNDO\nDROP TABLE u2;\nDROP TABLE not_there;\nDROP TABLE u1;\n"
            .as_bytes(),
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(row_state(&db, 1), "applied|2");
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(31);
    assert!(out.stderr.contains("statement 2 of 3"), "{}", out.stderr);
    assert!(
        out.stderr.contains("DROP TABLE not_there"),
        "{}",
        out.stderr
    );
    // Statement by statement: the first undo statement committed on its own, the third never ran.
    assert!(!table_exists(&db, "u2"));
    assert!(table_exists(&db, "u1"));
    // One undo statement done: journaled as -(1 + 1).
    assert_eq!(row_state(&db, 1), "dirty|-2");
    // migrate leaves an undo in progress alone.
    let again = crdb(&db, dir.path(), &["migrate"]);
    again.expect_code(32);
    assert!(
        again
            .stderr
            .contains("crdb-migrate repair --version 1 --mark-applied"),
        "{}",
        again.stderr
    );
    // A rollback resumes at the failed statement (not at the first, whose table is gone).
    let again = crdb(&db, dir.path(), &["rollback"]);
    again.expect_code(31);
    assert!(
        again.stderr.contains("statement 2 of 3"),
        "{}",
        again.stderr
    );
    assert_eq!(row_state(&db, 1), "dirty|-2");
    // The cause fixed outside, the rerun finishes the undo.
    psql(&db.url, "CREATE TABLE not_there (id INT);");
    crdb(&db, dir.path(), &["rollback"]).expect_code(0);
    assert!(!table_exists(&db, "u1") && !table_exists(&db, "not_there"));
    assert_eq!(ledger_rows(&db), "");
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert!(table_exists(&db, "u1") && table_exists(&db, "u2"));
    assert_eq!(row_state(&db, 1), "applied|2");
}

#[test]
fn repeat_until_zero_over_ten_thousand_rows_in_batches_of_a_thousand_takes_eleven_runs() {
    let db = semantics_db("repeat_until_zero");
    psql(
        &db.url,
        "CREATE TABLE big (id INT PRIMARY KEY, done BOOL NOT NULL DEFAULT false);
         INSERT INTO big (id) SELECT g FROM generate_series(1, 10000) g;",
    );
    let dir = dir_with(&[(
        "1_backfill.sql",
        "-- @NO_TRANSACTION\n\
         SELECT 1;\n\
         -- @REPEAT_UNTIL_ZERO\n\
         UPDATE big SET done = true WHERE id IN (SELECT id FROM big WHERE NOT done ORDER BY id LIMIT 1000);\n\
         -- @UNDO\n\
         -- @REPEAT_UNTIL_ZERO\n\
         UPDATE big SET done = false WHERE id IN (SELECT id FROM big WHERE done ORDER BY id LIMIT 4000);\n".as_bytes(),
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    let batches = out.events_named("migration.batch");
    assert_eq!(batches.len(), 11, "{}", out.stdout);
    let rows: Vec<u64> = batches
        .iter()
        .map(|e| field(e, "rows").as_u64().expect("rows"))
        .collect();
    assert_eq!(rows, [vec![1000; 10], vec![0]].concat());
    assert_eq!(field(&batches[10], "rows_total").as_u64(), Some(10_000));
    assert_eq!(field(&batches[10], "run").as_u64(), Some(11));
    assert_eq!(field(&batches[10], "statement").as_u64(), Some(2));
    assert_eq!(
        psql(&db.url, "SELECT count(*) FROM big WHERE done"),
        "10000"
    );
    assert_eq!(row_state(&db, 1), "applied|2");
    // The undo repeats too: 4 runs of up to 4000, the last affecting none.
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(0);
    let rows: Vec<u64> = out
        .events_named("migration.batch")
        .iter()
        .map(|e| field(e, "rows").as_u64().expect("rows"))
        .collect();
    assert_eq!(rows, [4000, 4000, 2000, 0]);
    assert_eq!(psql(&db.url, "SELECT count(*) FROM big WHERE done"), "0");
}

// ---------------------------------------------------------------------------------------------
// Ordering and drift.
// ---------------------------------------------------------------------------------------------

fn create(name: &str) -> String {
    format!("CREATE TABLE {name} (id INT);\n-- @UNDO\nDROP TABLE {name};\n")
}

#[test]
fn out_of_order_is_refused_unless_allowed() {
    let db = semantics_db("out_of_order");
    let dir = dir_with(&[
        ("1_a.sql", create("a").as_bytes()),
        ("3_c.sql", create("c").as_bytes()),
    ]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    write(dir.path(), "2_b.sql", &create("b"));
    for args in [&["migrate"][..], &["plan"][..]] {
        let out = crdb(&db, dir.path(), args);
        out.expect_code(32);
        assert!(out.stderr.contains("version 2"), "{}", out.stderr);
        assert!(
            out.stderr.contains("newest applied version 3"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("MIGRATE_ALLOW_OUT_OF_ORDER=true"),
            "{}",
            out.stderr
        );
    }
    assert!(!table_exists(&db, "b"));
    let allow = [("MIGRATE_ALLOW_OUT_OF_ORDER", "true")];
    let out = crdb_env(&db, dir.path(), &allow, &["migrate"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 1);
    assert!(table_exists(&db, "b"));
    assert_eq!(ledger_rows(&db), "1:applied,2:applied,3:applied");
    // Once applied, it is no longer out of order.
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
}

#[test]
fn an_edited_applied_file_is_refused_until_its_checksum_is_accepted() {
    let db = semantics_db("accept_checksum");
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let edited = "CREATE TABLE a (id INT); -- reformatted\n-- @UNDO\nDROP TABLE a;\n";
    write(dir.path(), "1_a.sql", edited);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(32);
    assert!(
        out.stderr.contains("was applied from a different file"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("crdb-migrate repair --version 1 --accept-checksum"),
        "{}",
        out.stderr
    );
    let out = crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--accept-checksum"],
    );
    out.expect_code(0);
    assert_eq!(out.events_named("repair").len(), 1);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.applied").len(),
        0,
        "nothing re-run"
    );
    let s: Value =
        serde_json::from_str(&crdb(&db, dir.path(), &["status", "--json"]).stdout).expect("json");
    assert_eq!(s["migrations"][0]["checksum_matches"], true);
}

#[test]
fn a_dirty_no_transaction_file_that_changed_is_refused_and_resumes_once_restored() {
    let db = semantics_db("dirty_changed");
    psql(&db.url, "CREATE TABLE log (n INT);");
    let dir = dir_with(&[("1_steps.sql", FOUR_STEPS.as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(31);
    assert_eq!(row_state(&db, 1), "dirty|2");
    // Someone "fixes" the file instead of the database: the journal no longer fits it.
    write(
        dir.path(),
        "1_steps.sql",
        &FOUR_STEPS.replace("INSERT INTO missing", "INSERT INTO log"),
    );
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(32);
    assert!(
        out.stderr
            .contains("is partly applied (dirty) and its file changed"),
        "{}",
        out.stderr
    );
    assert_eq!(psql(&db.url, "SELECT count(*) FROM log"), "2");
    // Restored and fixed outside: resumes.
    write(dir.path(), "1_steps.sql", FOUR_STEPS);
    psql(&db.url, "CREATE TABLE missing (n INT);");
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(psql(&db.url, "SELECT count(*) FROM log"), "3");
    assert_eq!(row_state(&db, 1), "applied|5");
}

// ---------------------------------------------------------------------------------------------
// Statement timeout.
// ---------------------------------------------------------------------------------------------

#[test]
fn statement_timeout_cancels_a_slow_migration_with_57014() {
    let db = semantics_db("statement_timeout");
    let dir = dir_with(&[(
        "1_slow.sql",
        "CREATE TABLE slow (id INT);\nSELECT pg_sleep(2);\n-- @UNDO\nDROP TABLE slow;\n".as_bytes(),
    )]);
    let out = crdb_env(
        &db,
        dir.path(),
        &[("MIGRATE_STATEMENT_TIMEOUT", "200ms")],
        &["migrate"],
    );
    out.expect_code(30);
    assert!(out.stderr.contains("SQLSTATE 57014"), "{}", out.stderr);
    assert!(!table_exists(&db, "slow"));
    assert_eq!(ledger_rows(&db), "");
    // The same file with a longer bound passes.
    crdb_env(
        &db,
        dir.path(),
        &[("MIGRATE_STATEMENT_TIMEOUT", "5s")],
        &["migrate"],
    )
    .expect_code(0);
}

// ---------------------------------------------------------------------------------------------
// The CockroachDB lint: `verify` and `plan --json`.
// ---------------------------------------------------------------------------------------------

/// (file, the rules expected on it: empty for the negative examples).
const LINT_CASES: &[(&str, &str, &[&str])] = &[
    (
        "1_base.sql",
        "CREATE TABLE a (id INT, old INT);\nCREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE a, b;\n",
        &[],
    ),
    // irreversible
    (
        "2_no_undo.sql",
        "CREATE TABLE c (id INT);\n",
        &["irreversible"],
    ),
    (
        "3_with_undo.sql",
        "CREATE TABLE d (id INT);\n-- @UNDO\nDROP TABLE d;\n",
        &[],
    ),
    // multiple_schema_changes
    (
        "4_two_alters.sql",
        "ALTER TABLE a ADD COLUMN x INT;\nALTER TABLE b ADD COLUMN y INT;\n-- @UNDO\nSELECT 1;\n",
        &["multiple_schema_changes"],
    ),
    (
        "5_new_table_and_index.sql",
        "CREATE TABLE e (id INT);\nCREATE INDEX e_id ON e (id);\n-- @UNDO\nDROP TABLE e;\n",
        &[],
    ),
    // schema_change_after_write
    (
        "6_write_then_alter.sql",
        "INSERT INTO a (id) VALUES (1);\nALTER TABLE b ADD COLUMN z INT;\n-- @UNDO\nSELECT 1;\n",
        &["schema_change_after_write"],
    ),
    (
        "7_alter_then_write.sql",
        "ALTER TABLE b ADD COLUMN z2 INT;\nINSERT INTO a (id) VALUES (1);\n-- @UNDO\nSELECT 1;\n",
        &[],
    ),
    // add_column_then_use
    (
        "8_add_then_use.sql",
        "ALTER TABLE a ADD COLUMN w INT;\nUPDATE a SET w = 1;\n-- @UNDO\nSELECT 1;\n",
        &["add_column_then_use"],
    ),
    (
        "9_add_then_other.sql",
        "ALTER TABLE a ADD COLUMN v INT;\nUPDATE a SET id = 1;\n-- @UNDO\nSELECT 1;\n",
        &[],
    ),
    // drop_column_with_other_ddl
    (
        "10_drop_and_index.sql",
        "ALTER TABLE a DROP COLUMN old;\nCREATE INDEX b_x ON b (x);\n-- @UNDO\nSELECT 1;\n",
        &[
            "multiple_schema_changes",
            "drop_column_with_other_ddl",
            "breaking_drop_column",
        ],
    ),
    // One ALTER's clauses are CockroachDB's documented atomic way: quiet.
    (
        "15_drop_and_add_in_one_alter.sql",
        "ALTER TABLE a DROP COLUMN old3, ADD COLUMN new INT;\n-- @UNDO\nSELECT 1;\n",
        &["breaking_drop_column"],
    ),
    // alter_column_type
    (
        "16_alter_type.sql",
        "ALTER TABLE a ALTER COLUMN n TYPE BIGINT;\n-- @UNDO\nSELECT 1;\n",
        &["alter_column_type", "breaking_alter_column_type"],
    ),
    (
        "17_alter_default.sql",
        "ALTER TABLE a ALTER COLUMN n SET DEFAULT 1;\n-- @UNDO\nSELECT 1;\n",
        &[],
    ),
    (
        "11_drop_alone.sql",
        "ALTER TABLE a DROP COLUMN old2;\n-- @UNDO\nSELECT 1;\n",
        &["breaking_drop_column"],
    ),
    // The transactional rules do not apply to a @NO_TRANSACTION file.
    (
        "12_no_transaction.sql",
        "-- @NO_TRANSACTION\nINSERT INTO a (id) VALUES (2);\nALTER TABLE a ADD COLUMN u INT;\n\
         ALTER TABLE b ADD COLUMN t INT;\nUPDATE a SET u = 1;\nALTER TABLE a DROP COLUMN t2, ADD COLUMN s INT;\n\
         -- @UNDO\nSELECT 1;\n",
        // The compatibility rules apply to every file.
        &["breaking_drop_column"],
    ),
];

fn lint_dir() -> TempDir {
    let files: Vec<(&str, &[u8])> = LINT_CASES
        .iter()
        .map(|(n, b, _)| (*n, b.as_bytes()))
        .collect();
    dir_with(&files)
}

#[test]
fn each_lint_rule_fires_on_its_positive_example_only_through_verify() {
    let dir = lint_dir();
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"));
    out.expect_code(0);
    let mut seen: Vec<(String, String)> = Vec::new();
    for line in out.stdout.lines().filter(|l| l.starts_with("warning [")) {
        let rule = line["warning [".len()..]
            .split(']')
            .next()
            .unwrap_or_default();
        let (file, _, _) = LINT_CASES
            .iter()
            .find(|(name, _, _)| line.contains(&format!("/{name}:")))
            .unwrap_or_else(|| panic!("warning names no file: {line}"));
        seen.push((file.to_string(), rule.to_string()));
        if rule.starts_with("breaking_") {
            assert!(line.contains(": statement "), "names the statement: {line}");
            assert!(line.contains("expand/contract: "), "says the fix: {line}");
            assert!(line.contains("-- @CONTRACT"), "says the fix: {line}");
        } else if rule != "irreversible" {
            assert!(line.contains(": statement "), "names the statement: {line}");
            assert!(line.contains("@NO_TRANSACTION"), "says the fix: {line}");
            assert!(line.contains("split it"), "says the fix: {line}");
        }
    }
    let mut expected: Vec<(String, String)> = LINT_CASES
        .iter()
        .flat_map(|(n, _, rules)| rules.iter().map(|r| (n.to_string(), r.to_string())))
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "{}", out.stdout);
    assert!(
        out.stdout.starts_with(&format!(
            "{} migration file(s) OK, {} warning(s)",
            LINT_CASES.len(),
            expected.len()
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn plan_json_lists_lint_warnings_on_each_step_and_flags_no_transaction() {
    let db = semantics_db("plan_lint");
    let dir = lint_dir();
    let out = crdb(&db, dir.path(), &["plan", "--json"]);
    out.expect_code(0);
    let p: Value = serde_json::from_str(&out.stdout).expect("plan json");
    let steps = p["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), LINT_CASES.len());
    for step in steps {
        let file = step["file"].as_str().expect("file");
        let (name, _, rules) = LINT_CASES
            .iter()
            .find(|(n, _, _)| file.ends_with(&format!("/{n}")))
            .expect("a step for each case");
        let got: Vec<&str> = step["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .map(|w| w["rule"].as_str().expect("rule"))
            .collect();
        assert_eq!(&got, rules, "{name}: {step}");
        for w in step["warnings"].as_array().expect("warnings") {
            assert!(
                w["message"].as_str().is_some_and(|m| m.contains(name)),
                "{w}"
            );
        }
        assert_eq!(
            step["no_transaction"],
            *name == "12_no_transaction.sql",
            "{name}: {step}"
        );
    }
    // plan changes nothing.
    assert!(!table_exists(&db, "a"));
}

// ---------------------------------------------------------------------------------------------
// CockroachDB's own mechanisms (a real cluster), with the PostgreSQL imitation where there is one.
// ---------------------------------------------------------------------------------------------

/// `db`'s URL for another user (trust / insecure servers: no password).
fn as_user(db: &TestDb, user: &str) -> TestDb {
    let admin = format!("//{}@", server().user());
    TestDb {
        name: db.name.clone(),
        url: db.url.replacen(&admin, &format!("//{user}@"), 1),
    }
}

/// A login role (user) `name` that may create tables in `db`.
fn app_user(db: &TestDb, name: &str) -> TestDb {
    if on_cockroach() {
        psql(
            &db.url,
            &format!(
                "CREATE USER {name}; GRANT ALL ON DATABASE {d} TO {name}; GRANT ALL ON SCHEMA public TO {name};",
                d = db.name
            ),
        );
    } else {
        dressed::owner_role(&db.url, &db.name, name);
    }
    as_user(db, name)
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "cockroach"),
    ignore = "needs CockroachDB: the real mechanism; its PostgreSQL imitation is above"
)]
fn a_real_xxa00_from_a_unique_index_over_duplicate_rows_marks_the_migration_dirty() {
    // PostgreSQL rejects the index inside the transaction; its XXA00 imitation is above.
    let db = semantics_db("real_xxa00");
    psql(
        &db.url,
        "CREATE TABLE dup (x INT8); INSERT INTO dup VALUES (1), (1);",
    );
    let dir = dir_with(&[(
        "1_unique.sql",
        b"CREATE UNIQUE INDEX dup_x ON dup (x);\n-- @UNDO\nDROP INDEX dup@dup_x;\n",
    )]);
    // The ledger write makes it a multi-statement transaction: the index is validated after
    // COMMIT, which then reports "transaction committed but schema change aborted".
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(31);
    assert!(out.stderr.contains("XXA00"), "{}", out.stderr);
    assert_eq!(row_state(&db, 1), "dirty|0");
    crdb(&db, dir.path(), &["migrate"]).expect_code(32);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "cockroach"),
    ignore = "needs CockroachDB: the real mechanism; its PostgreSQL imitation is above"
)]
fn a_real_40001_from_a_concurrent_writer_on_a_table_the_migration_read_is_replayed() {
    // On PostgreSQL the 40001 imitations above stand for it.
    let db = semantics_db("real_40001");
    psql(
        &db.url,
        "CREATE TABLE counter (id INT8 PRIMARY KEY, n INT8); INSERT INTO counter VALUES (1, 0);",
    );
    // Reads the row, sleeps, then writes it: a writer committing meanwhile pushes the write
    // past the read, whose refresh fails (40001); the replay then runs alone.
    let dir = dir_with(&[(
        "1_bump.sql",
        b"SELECT n FROM counter WHERE id = 1;\nSELECT pg_sleep(2);\nUPDATE counter SET n = n + 1 WHERE id = 1;\n-- @UNDO\nSELECT 1;\n",
    )]);
    let mut cmd = bin_at(&db.url, dir.path());
    cmd.env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_HOLDER", "semantics-test")
        .arg("migrate");
    let bg = Background::spawn(&mut cmd);
    wait_until(Duration::from_secs(20), "migration.started", || {
        bg.has_logged("migration.started")
    });
    psql(&db.url, "UPDATE counter SET n = 100 WHERE id = 1;");
    let out = bg.wait(Duration::from_secs(60));
    out.expect_code(0);
    assert!(
        !out.events_named("migration.retry").is_empty(),
        "{}",
        out.stdout
    );
    assert_eq!(psql(&db.url, "SELECT n FROM counter WHERE id = 1"), "101");
    assert_eq!(ledger_rows(&db), "1:applied");
}

#[test]
fn a_paused_schema_change_job_on_a_table_the_migration_alters_is_exit_32() {
    let db = semantics_db("paused_job");
    psql(&db.url, "CREATE TABLE big (id INT8 PRIMARY KEY);");
    if on_cockroach() {
        // A real job, paused at a pausepoint of the declarative schema changer.
        psql(
            &db.url,
            "SET CLUSTER SETTING jobs.debug.pausepoints = 'newschemachanger.before.exec';",
        );
        let _ = try_psql(&db.url, "ALTER TABLE big ADD COLUMN y INT8 DEFAULT 1;");
        psql(&db.url, "SET CLUSTER SETTING jobs.debug.pausepoints = '';");
    } else {
        dressed::add_job(&db.url, 909, "paused", "big", 77, "postgres");
    }
    let dir = dir_with(&[(
        "1_big.sql",
        b"ALTER TABLE big ADD COLUMN z INT8;\n-- @UNDO\nALTER TABLE big DROP COLUMN z;\n",
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(32);
    assert!(out.stderr.contains("SHOW JOB"), "{}", out.stderr);
    assert!(out.stderr.contains("paused"), "{}", out.stderr);
    assert_eq!(ledger_rows(&db), "");
    if on_cockroach() {
        let _ = try_psql(
            &db.url,
            "CANCEL JOBS (SELECT job_id FROM [SHOW JOBS] WHERE status = 'paused' AND description LIKE '%big%');",
        );
    }
}

#[test]
fn a_missing_database_is_exit_20_naming_it_or_created_when_asked() {
    // The same on both servers: PostgreSQL refuses the login (3D000), CockroachDB accepts it
    // and the probe finds the database missing.
    let db = fresh_db("missing_base");
    let name = format!("{}_absent", db.name);
    let missing = TestDb {
        url: db
            .url
            .replacen(&format!("/{}?", db.name), &format!("/{name}?"), 1),
        name: name.clone(),
    };
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    let out = crdb(&missing, dir.path(), &["migrate"]);
    out.expect_code(20);
    assert!(out.stderr.contains(&name), "{}", out.stderr);
    let out = crdb_env(
        &missing,
        dir.path(),
        &[("MIGRATE_CREATE_DATABASE", "true")],
        &["migrate"],
    );
    out.expect_code(0);
    assert_eq!(out.events_named("db.created").len(), 1, "{}", out.stdout);
    assert_eq!(ledger_rows(&missing), "1:applied");
}

#[test]
fn with_crdb_internal_gated_jobs_are_unlisted_with_a_warning_and_migrate_goes_on() {
    let db = fresh_db("gated");
    let app = if on_cockroach() {
        let app = app_user(&db, "gated_app");
        // `allow_unsafe_internals` arrived in v25.4: an older server has no gate to close, and
        // the same run must list its jobs there all the same.
        if try_psql(&db.url, "SHOW allow_unsafe_internals").is_ok() {
            psql(
                &db.url,
                "ALTER ROLE gated_app SET allow_unsafe_internals = off;",
            );
        }
        app
    } else {
        dressed::dress(&db.url, &db.name, Gate::Revoked);
        app_user(&db, &format!("{}_app", db.name))
    };
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    let out = crdb(&app, dir.path(), &["migrate"]);
    out.expect_code(0);
    let unlisted = out.events_named("job.unlisted");
    if on_cockroach() {
        // SHOW JOBS is exempt from the gate: jobs are still listed, only by description.
        assert!(
            unlisted
                .iter()
                .all(|e| field(e, "reason").as_str() == Some("not an admin")),
            "{}",
            out.stdout
        );
    } else {
        assert!(!unlisted.is_empty(), "{}", out.stdout);
    }
    assert_eq!(ledger_rows(&db), "1:applied");
    let s: Value =
        serde_json::from_str(&crdb(&app, dir.path(), &["status", "--json"]).stdout).expect("json");
    assert_eq!(s["current_version"], 1);
}

#[test]
fn a_non_admin_migration_user_is_told_jobs_of_others_may_be_invisible() {
    let db = semantics_db("non_admin");
    if !on_cockroach() {
        psql(
            &db.url,
            "DO $$ BEGIN CREATE ROLE admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
        );
    }
    let app = app_user(&db, &format!("{}_app", db.name));
    let dir = dir_with(&[("1_a.sql", create("a").as_bytes())]);
    let out = crdb(&app, dir.path(), &["migrate"]);
    out.expect_code(0);
    let unlisted = out.events_named("job.unlisted");
    assert!(
        unlisted
            .iter()
            .any(|e| field(e, "reason").as_str() == Some("not an admin")),
        "{}",
        out.stdout
    );
    assert_eq!(ledger_rows(&db), "1:applied");
}

#[test]
fn a_role_defaulting_to_read_committed_still_migrates_with_a_statement_timeout() {
    let db = semantics_db("read_committed");
    let role = format!("{}_app", db.name);
    let app = app_user(&db, &role);
    if on_cockroach() {
        let _ = try_psql(
            &db.url,
            "SET CLUSTER SETTING sql.txn.read_committed_isolation.enabled = true;",
        );
    }
    psql(
        &db.url,
        &format!(
            "ALTER ROLE {} SET default_transaction_isolation = 'read committed';",
            app.url
                .split("//")
                .nth(1)
                .and_then(|r| r.split('@').next())
                .unwrap_or_default()
        ),
    );
    // A timeout puts `SET LOCAL` first in the transaction: the DDL is then not its first
    // statement, which CockroachDB refuses under READ COMMITTED.
    let dir = dir_with(&[(
        "1_t.sql",
        b"CREATE TABLE rc (id INT8);\nALTER TABLE rc ADD COLUMN v INT8;\n-- @UNDO\nDROP TABLE rc;\n",
    )]);
    let out = crdb_env(
        &app,
        dir.path(),
        &[("MIGRATE_STATEMENT_TIMEOUT", "30s")],
        &["migrate"],
    );
    out.expect_code(0);
    assert_eq!(ledger_rows(&db), "1:applied");
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "cockroach"),
    ignore = "needs CockroachDB: schema_locked is CockroachDB's; tests/cockroach_commit.rs imitates the refusal"
)]
fn a_schema_locked_table_is_refused_in_a_transaction_with_the_fix_and_altered_without_one() {
    // A migration's transaction goes to the legacy schema changer, which refuses any schema
    // change on a schema_locked table (57000); one statement outside a transaction goes to the
    // declarative one, which unlocks and re-locks the table itself.
    let db = semantics_db("schema_locked");
    psql(
        &db.url,
        "CREATE TABLE locked (id INT8 PRIMARY KEY) WITH (schema_locked = true);",
    );
    let alter =
        "ALTER TABLE locked ADD COLUMN v INT8;\n-- @UNDO\nALTER TABLE locked DROP COLUMN v;\n";
    let dir = dir_with(&[("1_locked.sql", alter.as_bytes())]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    assert!(
        out.stderr.contains("schema_locked = false"),
        "{}",
        out.stderr
    );
    assert_eq!(ledger_rows(&db), "");
    let no_tx = format!("-- @NO_TRANSACTION\n{alter}");
    let dir = dir_with(&[("1_locked.sql", no_tx.as_bytes())]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(ledger_rows(&db), "1:applied");
}

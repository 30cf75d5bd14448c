//! What a migration's transaction asks of the server and when its outcome counts, through the
//! real binary on PostgreSQL: a READ COMMITTED default does not weaken a migration's transaction
//! (it runs SERIALIZABLE), a baseline whose lease is taken from it commits nothing (its fence
//! check runs inside its transaction, before COMMIT), and CockroachDB's `schema_locked` refusal
//! (SQLSTATE 57000, raised here by a `DO` block) names the table and the fix. On a database
//! dressed as CockroachDB (its `version()` says so), COMMIT runs without the statement timeout
//! and a `@NO_TRANSACTION` DDL cancelled by its timeout leaves the row dirty, where PostgreSQL
//! keeps the limit and rewinds.
//!
//! The SQL here is PostgreSQL's (plpgsql, triggers, role settings), so against a real
//! CockroachDB these tests skip.

mod support;

use std::path::Path;

use support::dressed::{Dress, Gate, dress_as};
use support::fixtures;
use support::*;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write migration file");
}

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    run(fixtures::cmd(&db.url, dir, "commit-test", "10s").args(args))
}

/// A role whose default isolation is READ COMMITTED (set for this database only, so other
/// tests on the shared server keep theirs): the migration still runs SERIALIZABLE, with its
/// `SET LOCAL`s first, and so do its fence check and ledger write.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB on a PostgreSQL server"
)]
fn a_read_committed_default_does_not_weaken_a_migration() {
    let db = fresh_db("rc_default");
    psql(
        &db.url,
        &format!(
            "ALTER ROLE CURRENT_USER IN DATABASE {} SET default_transaction_isolation = 'read committed'",
            db.name
        ),
    );
    // A new session sees the default: the test's premise.
    assert_eq!(
        psql(&db.url, "SHOW default_transaction_isolation"),
        "read committed"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "1_isolation.sql",
        "-- @STATEMENT_TIMEOUT 30s\n-- @LOCK_TIMEOUT 5s\n\
         CREATE TABLE seen (isolation TEXT NOT NULL);\n\
         INSERT INTO seen SELECT current_setting('transaction_isolation');\n",
    );
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(psql(&db.url, "SELECT isolation FROM seen"), "serializable");
}

/// A baseline's lease taken from it mid-flight (a trigger on the ledger moves the fence, as a
/// takeover would): the fence check fails inside the baseline's transaction, so not one row
/// commits, and the trigger's own write rolls back with them.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB on a PostgreSQL server"
)]
fn a_baseline_whose_lease_is_taken_commits_nothing() {
    let db = fresh_db("baseline_fence");
    let dir = tempfile::tempdir().expect("tempdir");
    // The bookkeeping tables first: a run that applies a file, whose row is then removed.
    write(dir.path(), "1_t1.sql", "CREATE TABLE t1 (id INT);\n");
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    psql(&db.url, "DELETE FROM _migrations");
    for v in 2..=3 {
        write(
            dir.path(),
            &format!("{v}_t{v}.sql"),
            &format!("CREATE TABLE t{v} (id INT);\n"),
        );
    }
    psql(
        &db.url,
        "CREATE FUNCTION steal_lease() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE _migrations_lease SET fence = fence + 1000 WHERE id = 1; RETURN NEW; END $$;
         CREATE TRIGGER steal BEFORE INSERT ON _migrations FOR EACH ROW EXECUTE FUNCTION steal_lease();",
    );
    let fence_before = psql(&db.url, "SELECT fence FROM _migrations_lease WHERE id = 1");
    let out = crdb(&db, dir.path(), &["baseline", "--version", "3"]);
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        count(&db, "SELECT count(*) FROM _migrations"),
        0,
        "the baseline's rows committed although its lease was gone: {}\n{}",
        out.stdout,
        out.stderr
    );
    // The takeover happened inside the rolled-back transaction: the fence the baseline took
    // for itself is the one left.
    let fence_after = psql(&db.url, "SELECT fence FROM _migrations_lease WHERE id = 1");
    assert!(
        fence_after.parse::<i64>().unwrap() < fence_before.parse::<i64>().unwrap() + 1000,
        "before {fence_before}, after {fence_after}"
    );
}

/// CockroachDB refuses a schema change on a `schema_locked` table with SQLSTATE 57000 and the
/// table's name; the migration's transaction cannot unlock it, so the run fails (exit 30),
/// nothing is recorded, and the error says how to unlock and re-lock that table.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB on a PostgreSQL server"
)]
fn a_schema_locked_refusal_names_the_table_and_the_fix() {
    let db = fresh_db("schema_locked");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "1_alter.sql",
        "CREATE TABLE before_it (id INT);\n\
         DO $$ BEGIN RAISE EXCEPTION 'schema changes are disallowed on table \"accounts\" because it is locked' \
         USING ERRCODE = '57000'; END $$;\n",
    );
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        all.contains("ALTER TABLE \\\"accounts\\\" SET (schema_locked = false)")
            || all.contains("ALTER TABLE \"accounts\" SET (schema_locked = false)"),
        "{all}"
    );
    assert!(all.contains("schema_locked = true"), "{all}");
    assert!(!table_exists(&db, "before_it"));
    assert_eq!(count(&db, "SELECT count(*) FROM _migrations"), 0);
}

/// What COMMIT runs under: a deferred trigger (run by COMMIT, as CockroachDB's wait on a
/// schema-change job is) records the transaction's `statement_timeout`. On PostgreSQL the
/// file's limit is still in force at COMMIT; on CockroachDB the flight lifts it right before
/// COMMIT, so the wait for the jobs is not cut short and COMMIT's answer is their outcome.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB on a PostgreSQL server"
)]
fn on_cockroachdb_commit_runs_without_the_statement_timeout() {
    let body = "-- @STATEMENT_TIMEOUT 5s\n\
        CREATE TABLE at_commit (statement_timeout TEXT);\n\
        CREATE TABLE t (id INT);\n\
        CREATE FUNCTION note_timeout() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
        INSERT INTO at_commit VALUES (current_setting('statement_timeout')); RETURN NULL; END $$;\n\
        CREATE CONSTRAINT TRIGGER note AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED \
        FOR EACH ROW EXECUTE FUNCTION note_timeout();\n\
        INSERT INTO t VALUES (1);\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_at_commit.sql", body);

    let pg = fresh_db("commit_timeout_pg");
    crdb(&pg, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(
        psql(&pg.url, "SELECT statement_timeout FROM at_commit"),
        "5s"
    );

    let crdb_db = fresh_db("commit_timeout_crdb");
    // Dressed as a default v26.1 in the least that makes the binary take it for CockroachDB.
    dress_as(&crdb_db.url, &crdb_db.name, Dress::Minimal, Gate::Revoked);
    let out = crdb(&crdb_db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        psql(&crdb_db.url, "SELECT statement_timeout FROM at_commit"),
        "0",
        "{}",
        out.stdout
    );
    assert_eq!(
        psql(
            &crdb_db.url,
            "SELECT status FROM _migrations WHERE version = 1"
        ),
        "applied"
    );
}

/// A `@NO_TRANSACTION` schema change cancelled by its statement timeout: on PostgreSQL it
/// rolled back, so the journal is put back and the run fails plainly (exit 30, no row); on
/// CockroachDB the DDL may have committed with its job still running, so the row stays, dirty
/// at zero statements done (exit 31), and the message says why.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: imitates CockroachDB on a PostgreSQL server"
)]
fn on_cockroachdb_a_timed_out_ddl_leaves_the_row_dirty() {
    let body = "-- @NO_TRANSACTION\n-- @STATEMENT_TIMEOUT 300ms\n\
        CREATE TABLE slow_ddl AS SELECT 1 AS x FROM pg_sleep(1);\n\
        CREATE INDEX IF NOT EXISTS slow_ddl_x ON slow_ddl (x);\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_slow_ddl.sql", body);

    let pg = fresh_db("ddl_timeout_pg");
    let out = crdb(&pg, dir.path(), &["migrate"]);
    out.expect_code(30);
    assert!(out.stdout.contains("57014"), "{}", out.stdout);
    assert_eq!(count(&pg, "SELECT count(*) FROM _migrations"), 0);

    let crdb_db = fresh_db("ddl_timeout_crdb");
    // Dressed as a default v26.1 in the least that makes the binary take it for CockroachDB.
    dress_as(&crdb_db.url, &crdb_db.name, Dress::Minimal, Gate::Revoked);
    let out = crdb(&crdb_db, dir.path(), &["migrate"]);
    out.expect_code(31);
    assert_eq!(
        psql(
            &crdb_db.url,
            "SELECT status || '|' || statements_done FROM _migrations WHERE version = 1"
        ),
        "dirty|0"
    );
    assert!(
        out.stdout.contains("may have taken effect"),
        "{}",
        out.stdout
    );
}

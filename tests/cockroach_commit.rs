//! What a migration's transaction asks of the server and when its outcome counts, through the
//! real binary on PostgreSQL: a READ COMMITTED default does not weaken a migration's transaction
//! (it runs SERIALIZABLE), a baseline whose lease is taken from it commits nothing (its fence
//! check runs inside its transaction, before COMMIT), and CockroachDB's `schema_locked` refusal
//! (SQLSTATE 57000, raised here by a `DO` block) names the table and the fix.
//!
//! The SQL here is PostgreSQL's (plpgsql, triggers, role settings), so against a real
//! CockroachDB these tests skip.

mod support;

use std::path::Path;

use support::*;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write migration file");
}

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = bin_at(&db.url, dir);
    cmd.env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_HOLDER", "commit-test");
    run(cmd.args(args))
}

/// True (and a note on stderr) when the shared server is a real CockroachDB.
fn skip_on_cockroach() -> bool {
    let real = server().flavour() == Flavour::Cockroach;
    if real {
        eprintln!("skipped: this test imitates CockroachDB on a PostgreSQL server");
    }
    real
}

/// A role whose default isolation is READ COMMITTED (set for this database only, so other
/// tests on the shared server keep theirs): the migration still runs SERIALIZABLE, with its
/// `SET LOCAL`s first, and so do its fence check and ledger write.
#[test]
fn a_read_committed_default_does_not_weaken_a_migration() {
    if skip_on_cockroach() {
        return;
    }
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
fn a_baseline_whose_lease_is_taken_commits_nothing() {
    if skip_on_cockroach() {
        return;
    }
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
fn a_schema_locked_refusal_names_the_table_and_the_fix() {
    if skip_on_cockroach() {
        return;
    }
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

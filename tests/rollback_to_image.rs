//! Through the real binary: rolling back the way Kubernetes rolls back, with the older
//! release's image. Two migration directories stand for two image versions: the newer has
//! versions 1 to 4, the older 1 and 2 (the same files). The older image's `rollback
//! --to-image` undoes 4 and 3, whose files it has never seen, with the undo their ledger rows
//! keep; a second run does nothing; the newer image then migrates forward again.
//!
//! Every undo inserts its version into a side-effect table `undos` (with a serial, so the order
//! shows) in the undo's own transaction: an undo run twice shows as two rows, one not run as
//! none — read from the database, not from the tool's ledger.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::fixtures::{cmd, versions};
use support::*;
use tempfile::TempDir;

const WAIT: &str = "30s";

/// Migration `v`: a table of its own; the undo records itself in `undos`, then drops it.
fn body(v: i64) -> String {
    format!(
        "CREATE TABLE t_{v} (id INT);\n-- @UNDO\nINSERT INTO undos (version) VALUES ({v});\nDROP TABLE t_{v};\n"
    )
}

/// A directory with migrations `1..=n` ([`body`]), `special` replacing the bodies it names.
fn image(n: i64, special: &[(i64, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        let text = special
            .iter()
            .find(|(s, _)| *s == v)
            .map_or_else(|| body(v), |(_, b)| b.to_string());
        fs::write(dir.path().join(format!("{v}_m{v}.sql")), text).expect("write");
    }
    dir
}

/// A fresh database with the side-effect table.
fn db_with_undos(tag: &str) -> TestDb {
    let db = fresh_db(tag);
    psql(
        &db.url,
        "CREATE TABLE undos (n SERIAL PRIMARY KEY, version INT NOT NULL)",
    );
    db
}

/// The versions whose undo ran, in the order they ran.
fn undos(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY n), '') FROM undos",
    )
}

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    run(cmd(&db.url, dir, "to-image", WAIT).args(args))
}

/// The tables and columns of the test's schema (our own tables left out), in one string.
fn schema(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(table_name || '.' || column_name || ':' || data_type, ',' \
         ORDER BY table_name, column_name), '') FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_migrations%'",
    )
}

#[test]
fn the_older_image_undoes_what_it_has_never_seen_and_the_newer_migrates_again() {
    let db = db_with_undos("to_image");
    let (newer, older) = (image(4, &[]), image(2, &[]));
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    assert_eq!(versions(&db), "1,2,3,4");
    // Each row keeps its undo, its mode and its checksum.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _migrations WHERE undo_sql LIKE 'INSERT INTO undos%' \
             AND undo_no_transaction = false AND length(undo_checksum) = 64"
        ),
        4
    );
    // The older image's migrate never rolls back by itself: it refuses, or with
    // MIGRATE_ALLOW_NEWER_SCHEMA accepts the newer schema as it is.
    let refused = crdb(&db, older.path(), &["migrate"]);
    refused.expect_code(32);
    assert!(refused.stderr.contains("version 3"), "{}", refused.stderr);
    run(cmd(&db.url, older.path(), "old-pod", WAIT)
        .env("MIGRATE_ALLOW_NEWER_SCHEMA", "true")
        .arg("migrate"))
    .expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1,2,3,4".into(), "".into()));

    let out = crdb(&db, older.path(), &["rollback", "--to-image"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.rolled_back").len(), 2);
    assert_eq!(versions(&db), "1,2");
    assert_eq!(undos(&db), "4,3", "newest first, each once");
    assert!(!table_exists(&db, "t_3") && !table_exists(&db, "t_4"));
    // Exactly the older version, schema included: as a database the older image migrated.
    let reference = db_with_undos("to_image_reference");
    crdb(&reference, older.path(), &["migrate"]).expect_code(0);
    assert_eq!(schema(&db), schema(&reference));

    // Again: nothing newer, nothing run.
    let again = crdb(&db, older.path(), &["rollback", "--to-image"]);
    again.expect_code(0);
    assert!(again.has_event("run.nothing_to_do"), "{}", again.stdout);
    assert!(!again.has_event("migration.started"), "{}", again.stdout);
    assert_eq!((versions(&db), undos(&db)), ("1,2".into(), "4,3".into()));

    // The newer image migrates forward again.
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    assert_eq!(versions(&db), "1,2,3,4");
    assert!(table_exists(&db, "t_3") && table_exists(&db, "t_4"));
}

#[test]
fn count_and_target_cross_versions_this_image_has_no_file_for() {
    let db = db_with_undos("count_target");
    let (newer, older) = (image(4, &[]), image(2, &[]));
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    crdb(&db, older.path(), &["rollback", "--count", "1"]).expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1,2,3".into(), "4".into()));
    // Across the boundary: 3 with its stored undo, 2 with the older image's own file.
    crdb(&db, older.path(), &["rollback", "--target", "1"]).expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1".into(), "4,3,2".into()));
    // A version without a file whose row keeps no undo: the database disagrees (32).
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    psql(
        &db.url,
        "UPDATE _migrations SET undo_sql = NULL, undo_no_transaction = NULL, undo_checksum = NULL WHERE version = 4",
    );
    let out = crdb(&db, older.path(), &["rollback"]);
    out.expect_code(32);
    assert!(out.stderr.contains("version 4"), "{}", out.stderr);
    assert_eq!(versions(&db), "1,2,3,4");
}

#[test]
fn an_unstored_or_irreversible_newer_migration_makes_to_image_refuse_with_nothing_changed() {
    let db = db_with_undos("to_image_refused");
    let irreversible = "CREATE TABLE t_4 (id INT);\n";
    let (newer, older) = (image(4, &[(4, irreversible)]), image(2, &[]));
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db.url,
            "SELECT undo_sql IS NULL, undo_no_transaction, undo_checksum IS NULL FROM _migrations WHERE version = 4"
        ),
        "t|f|t",
        "irreversible is recorded as such"
    );
    // Version 3 as a row written before undo was kept.
    psql(
        &db.url,
        "UPDATE _migrations SET undo_sql = NULL, undo_no_transaction = NULL, undo_checksum = NULL WHERE version = 3",
    );
    let before = schema(&db);
    let out = crdb(&db, older.path(), &["rollback", "--to-image"]);
    out.expect_code(32);
    assert!(out.stderr.contains("version 4"), "{}", out.stderr);
    assert!(out.stderr.contains("irreversible"), "{}", out.stderr);
    assert!(out.stderr.contains("version 3"), "{}", out.stderr);
    assert!(
        out.stderr.contains("before crdb-migrate kept"),
        "{}",
        out.stderr
    );
    assert!(!out.has_event("migration.started"), "{}", out.stdout);
    assert_eq!((versions(&db), undos(&db)), ("1,2,3,4".into(), "".into()));
    assert_eq!(schema(&db), before);
}

#[test]
fn a_stored_undo_changed_in_the_table_is_refused_naming_its_version() {
    let db = db_with_undos("to_image_tampered");
    let (newer, older) = (image(3, &[]), image(2, &[]));
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    psql(
        &db.url,
        "UPDATE _migrations SET undo_sql = 'DROP TABLE t_1; DROP TABLE t_3;' WHERE version = 3",
    );
    for args in [&["rollback", "--to-image"][..], &["rollback"][..]] {
        let out = crdb(&db, older.path(), args);
        out.expect_code(32);
        assert!(out.stderr.contains("version 3"), "{}", out.stderr);
        assert!(out.stderr.contains("checksum"), "{}", out.stderr);
    }
    assert_eq!((versions(&db), undos(&db)), ("1,2,3".into(), "".into()));
    assert!(table_exists(&db, "t_1") && table_exists(&db, "t_3"));
}

#[test]
fn a_ledger_from_before_gets_the_undo_columns_on_first_use() {
    let db = db_with_undos("to_image_adopt");
    // The ledger as crdb-migrate made it before it kept undo, with 1 and 2 applied.
    psql(
        &db.url,
        "CREATE TABLE _migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), checksum TEXT, duration_ms BIGINT,
            applied_by TEXT, fence BIGINT, status TEXT NOT NULL DEFAULT 'applied',
            statements_done BIGINT NOT NULL DEFAULT 0);
         INSERT INTO _migrations (version, description) VALUES (1, 'm1'), (2, 'm2');
         CREATE TABLE t_1 (id INT); CREATE TABLE t_2 (id INT);",
    );
    let (newer, older) = (image(4, &[]), image(2, &[]));
    // Read before adoption: the rows as they are.
    let status = crdb(&db, newer.path(), &["status", "--json"]);
    status.expect_code(0);
    assert!(
        status.stdout.contains("\"current_version\": 2"),
        "{}",
        status.stdout
    );
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db.url,
            "SELECT string_agg(version || ':' || (undo_no_transaction IS NOT NULL), ',' ORDER BY version) FROM _migrations"
        ),
        "1:false,2:false,3:true,4:true"
    );
    crdb(&db, older.path(), &["rollback", "--to-image"]).expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1,2".into(), "4,3".into()));
    // Below the older image's newest file, its own files undo the rows from before.
    crdb(&db, older.path(), &["rollback", "--target", "0"]).expect_code(0);
    assert_eq!(versions(&db), "");
}

#[test]
fn a_no_transaction_undo_resumes_from_its_journal() {
    let db = db_with_undos("to_image_nt");
    psql(&db.url, "CREATE SEQUENCE fail_once");
    // Version 3's undo runs statement by statement; its third statement fails the first time
    // only (a sequence is not rolled back).
    let nt = "-- @NO_TRANSACTION\nCREATE TABLE t_3a (id INT);\nCREATE TABLE t_3b (id INT);\n\
              -- @UNDO\nINSERT INTO undos (version) VALUES (3);\nDROP TABLE t_3b;\n\
              SELECT 1 / (nextval('fail_once') - 1);\nDROP TABLE t_3a;\n";
    let (newer, older) = (image(3, &[(3, nt)]), image(2, &[]));
    crdb(&db, newer.path(), &["migrate"]).expect_code(0);
    assert_eq!(
        psql(
            &db.url,
            "SELECT undo_no_transaction FROM _migrations WHERE version = 3"
        ),
        "t"
    );
    let out = crdb(&db, older.path(), &["rollback", "--to-image"]);
    out.expect_code(31);
    assert!(out.stderr.contains("statement 3 of 4"), "{}", out.stderr);
    // Two undo statements done: journaled as -(2 + 1).
    assert_eq!(
        psql(
            &db.url,
            "SELECT status || '|' || statements_done FROM _migrations WHERE version = 3"
        ),
        "dirty|-3"
    );
    // migrate does not touch an undo in progress, and says how to finish it.
    let refused = crdb(&db, newer.path(), &["migrate"]);
    refused.expect_code(32);
    assert!(
        refused.stderr.contains("run that rollback again"),
        "{}",
        refused.stderr
    );
    // The rerun resumes at statement 3: the first two (an INSERT, a DROP of a table now gone)
    // are not run again.
    let again = crdb(&db, older.path(), &["rollback", "--to-image"]);
    again.expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1,2".into(), "3".into()));
    assert!(!table_exists(&db, "t_3a") && !table_exists(&db, "t_3b"));
}

/// The migration connection's message counts (client to server, server to client) in a clean
/// `rollback --to-image` of 4 and 3 through a proxy.
fn measure(newer: &Path, older: &Path) -> (u64, u64) {
    let db = db_with_undos("to_image_measure");
    crdb(&db, newer, &["migrate"]).expect_code(0);
    let proxy = Proxy::to_server();
    run(cmd(&proxy.url(&db.url), older, "to-image", WAIT).args(["rollback", "--to-image"]))
        .expect_code(0);
    wait_until(Duration::from_secs(10), "every connection closed", || {
        proxy.stats().conns.iter().all(|c| !c.open)
    });
    assert_eq!(undos(&db), "4,3");
    let stats = proxy.stats();
    let c = stats.conn(1).expect("the migration connection");
    (
        c.messages(Dir::ClientToServer),
        c.messages(Dir::ServerToClient),
    )
}

#[test]
fn a_cut_connection_in_the_middle_finishes_after_a_rerun_exactly_once() {
    let (newer, older) = (image(4, &[]), image(2, &[]));
    let (c2s, s2c) = measure(newer.path(), older.path());
    eprintln!("clean --to-image: migration connection c2s {c2s}, s2c {s2c} messages");
    let mut cases = Vec::new();
    for (dir, total) in [(Dir::ClientToServer, c2s), (Dir::ServerToClient, s2c)] {
        // Spread over the whole run: handshake, ledger read, both undo flights, the tail.
        for k in (1..=6).map(|i| (total * i / 7).max(1)) {
            cases.push((dir, k));
        }
    }
    for (dir, k) in cases {
        let what = format!("cut at message {k} {dir:?}");
        let arrow = if dir == Dir::ClientToServer {
            "c2s"
        } else {
            "s2c"
        };
        let db = db_with_undos(&format!("to_image_cut_{arrow}_{k}"));
        crdb(&db, newer.path(), &["migrate"]).expect_code(0);
        let proxy = Proxy::to_server();
        let id = proxy.arm_once(Fault::CutAt {
            dir,
            message: k,
            conn: ConnMatch::Nth(1),
        });
        let first = run_with_deadline(
            cmd(&proxy.url(&db.url), older.path(), "to-image", WAIT)
                .args(["rollback", "--to-image"]),
            Duration::from_secs(60),
        );
        assert_eq!(
            proxy.fired(id),
            1,
            "{what}: the cut fired\n{}",
            first.stdout
        );
        // Whatever the first run made of it, a rerun finishes the job.
        let again = crdb(&db, older.path(), &["rollback", "--to-image"]);
        again.expect_code(0);
        assert_eq!(versions(&db), "1,2", "{what}");
        assert_eq!(undos(&db), "4,3", "{what}: each undo exactly once");
        assert!(
            !table_exists(&db, "t_3") && !table_exists(&db, "t_4"),
            "{what}"
        );
    }
}

#[test]
fn baseline_and_an_accepted_checksum_keep_the_undo_the_older_image_runs() {
    let db = db_with_undos("to_image_baseline");
    psql(
        &db.url,
        "CREATE TABLE t_1 (id INT); CREATE TABLE t_2 (id INT); CREATE TABLE t_3 (id INT);",
    );
    let (newer, older) = (image(3, &[]), image(2, &[]));
    // Recorded without running: the rows keep the files' undo all the same.
    crdb(&db, newer.path(), &["baseline", "--version", "3"]).expect_code(0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _migrations WHERE undo_sql LIKE 'INSERT INTO undos%'"
        ),
        3
    );
    // Version 3's file edited on purpose (its undo too) and accepted: the new undo is kept.
    fs::write(
        newer.path().join("3_m3.sql"),
        "CREATE TABLE t_3 (id INT);\n-- @UNDO\nINSERT INTO undos (version) VALUES (33);\nDROP TABLE t_3;\n",
    )
    .expect("write");
    crdb(&db, newer.path(), &["migrate"]).expect_code(32);
    crdb(
        &db,
        newer.path(),
        &["repair", "--version", "3", "--accept-checksum"],
    )
    .expect_code(0);
    crdb(&db, older.path(), &["rollback", "--to-image"]).expect_code(0);
    assert_eq!((versions(&db), undos(&db)), ("1,2".into(), "33".into()));
    assert!(!table_exists(&db, "t_3"));
}

//! The library API against a real server: the documented operations on the async
//! `Migrator` and on the blocking wrapper (create, load, migrate to a target, rollback by count
//! and to a target, current version, is-applied, applied rows with applied_at).

mod support;

use crdb_migrate::parts::StoredUndo;
use crdb_migrate::{Config, Error, Goal, Migrator, Rollback, Run, blocking};
use support::{fresh_db, psql};

fn config(url: &str, dir: &std::path::Path) -> Config {
    Config::new(Some(url.to_string()), dir)
}

#[test]
fn the_blocking_migrator_does_the_everyday_operations() {
    let db = fresh_db("library_blocking");
    let dir = tempfile::tempdir().expect("tempdir");
    let m = blocking::Migrator::new(config(&db.url, dir.path())).expect("runtime");
    m.create(
        "create users",
        Some("CREATE TABLE users (id INT);"),
        Some("DROP TABLE users;"),
    )
    .expect("create 1");
    let second = m
        .create(
            "add age",
            Some("ALTER TABLE users ADD COLUMN age INT;"),
            Some("ALTER TABLE users DROP COLUMN age;"),
        )
        .expect("create 2");
    let set = m.load().expect("load");
    assert_eq!(set.len(), 2);
    assert!(second.ends_with(format!("{}_add_age.sql", set[1].version)));
    assert_eq!(
        m.migrate(Some(set[0].version)).expect("migrate to target"),
        1
    );
    assert_eq!(m.current_version().expect("current"), set[0].version);
    assert!(!m.is_applied(set[1].version).expect("is_applied"));
    assert_eq!(m.migrate(None).expect("migrate"), 1);
    assert!(m.is_applied(set[1].version).expect("is_applied"));
    let rows = m.applied().expect("applied");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.applied_at.is_some()));
    assert_eq!(m.migrate(None).expect("no-op"), 0);
    // The ledger keeps the undo: rows carry it, and nothing is newer than this image.
    assert!(
        rows.iter()
            .all(|r| matches!(r.undo, StoredUndo::Sql { .. }))
    );
    assert_eq!(m.rollback(Rollback::ToImage).expect("nothing newer"), 0);
    assert_eq!(m.rollback(Rollback::Count(1)).expect("rollback 1"), 1);
    assert_eq!(m.current_version().expect("current"), set[0].version);
    assert_eq!(m.rollback(Rollback::Target(0)).expect("rollback all"), 1);
    assert_eq!(m.current_version().expect("current"), 0);
}

#[test]
fn the_async_migrator_reports_counts_and_typed_errors() {
    let db = fresh_db("library_async");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_t.sql"),
        "CREATE TABLE t (id INT);\n-- @UNDO\nDROP TABLE t;\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("2_bad.sql"),
        "INSERT INTO nowhere VALUES (1);\n",
    )
    .expect("write");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let m = Migrator::new(config(&db.url, dir.path()));
    runtime.block_on(async {
        let err = m.migrate(None).await.expect_err("migration 2 fails");
        assert_eq!(err.exit().code(), 30, "{err}");
        assert!(err.to_string().contains("2_bad.sql"), "{err}");
        assert_eq!(m.current_version().await.expect("current"), 1);
        assert!(m.is_applied(1).await.expect("is_applied"));
    });
}

/// Migration 2 of the concurrent-runs test: it waits (10 s at most) until a second session of
/// the server runs the same statement, so it succeeds only when both runs are inside it at the
/// same moment; runs taken one after the other fail it. Having seen the other, it stays 2 s
/// more, so the other (polling every 50 ms) sees it too before it leaves.
const RENDEZVOUS: &str = "DO $$
DECLARE
  met BOOLEAN := false;
BEGIN
  FOR i IN 1..200 LOOP
    PERFORM pg_stat_clear_snapshot();
    met := (SELECT count(*) FROM pg_stat_activity
             WHERE state = 'active' AND query LIKE '%rendezvous_of_two_runs%') >= 2;
    EXIT WHEN met;
    PERFORM pg_sleep(0.05);
  END LOOP;
  IF NOT met THEN
    RAISE EXCEPTION 'the other run never reached migration 2';
  END IF;
  PERFORM pg_sleep(2);
END $$;
";

fn ledger(url: &str) -> String {
    psql(
        url,
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM _migrations",
    )
}

#[test]
fn two_runs_on_two_databases_go_at_once_each_with_its_own_lease_stop_and_report() {
    let (a, b) = (fresh_db("run_side_a"), fresh_db("run_side_b"));
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        (
            "1_t.sql",
            "CREATE TABLE t (id INT);\n-- @UNDO\nDROP TABLE t;\n".to_string(),
        ),
        ("2_rendezvous.sql", RENDEZVOUS.to_string()),
        ("3_u.sql", "CREATE TABLE u (id INT);\n".to_string()),
    ];
    for (name, sql) in &files {
        std::fs::write(dir.path().join(name), sql).expect("write");
    }
    let run = |url: &str| Run::new(config(url, dir.path()), Goal::Up(None));
    let (run_a, run_b) = (run(&a.url), run(&b.url));
    let stop_b = run_b.stop();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (out_a, out_b) = runtime.block_on(async {
        // Spawned tasks: a run's future can be handed to the runtime (it is Send + 'static).
        let (a, b) = (tokio::spawn(run_a.run()), tokio::spawn(run_b.run()));
        (a.await.expect("run a"), b.await.expect("run b"))
    });
    assert!(out_a.result.is_ok(), "{:?}", out_a.result);
    assert!(out_b.result.is_ok(), "{:?}", out_b.result);
    assert_eq!(out_a.report.versions, vec![1, 2, 3]);
    assert_eq!(out_b.report.versions, vec![1, 2, 3]);
    assert_eq!(
        (out_a.report.current, out_b.report.current),
        (Some(3), Some(3))
    );
    assert_eq!(ledger(&a.url), "1,2,3");
    assert_eq!(ledger(&b.url), "1,2,3");
    assert!(!stop_b.is_cancelled(), "each run has its own stop");

    // Stopping one run leaves the other alone: b, cancelled before it starts, applies nothing
    // and says so in its own report; a's count is resolved on its own ledger, where undoing
    // the newest two is refused before anything runs (migration 3 has no undo SQL).
    std::fs::write(dir.path().join("4_v.sql"), "CREATE TABLE v (id INT);\n").expect("write");
    let run_a = Run::new(config(&a.url, dir.path()), Goal::DownBy(2));
    let run_b = run(&b.url);
    let stop_b = run_b.stop();
    stop_b.cancel();
    let (out_a, out_b) = runtime.block_on(async { tokio::join!(run_a.run(), run_b.run()) });
    assert!(
        matches!(out_b.result, Err(Error::Terminated)),
        "{:?}",
        out_b.result
    );
    assert!(out_b.report.versions.is_empty(), "{:?}", out_b.report);
    assert_eq!(ledger(&b.url), "1,2,3");
    assert!(
        matches!(out_a.result, Err(Error::Refused(_))),
        "{:?}",
        out_a.result
    );
    assert!(out_a.report.versions.is_empty(), "{:?}", out_a.report);
    assert_eq!(out_a.report.current, Some(3));
    assert_eq!(ledger(&a.url), "1,2,3");
}

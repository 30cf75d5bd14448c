//! The library API against a real server: the documented operations on the async
//! `Migrator` and on the blocking wrapper (create, load, migrate to a target, rollback by count
//! and to a target, current version, is-applied, applied rows with applied_at).

mod support;

use crdb_migrate::{Config, Migrator, Rollback, blocking};
use support::fresh_db;

fn config(url: &str, dir: &std::path::Path) -> Config {
    Config::new(Some(url.to_string()), dir)
}

#[test]
fn the_blocking_migrator_does_the_seed_guides_operations() {
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

//! Unit tests of the file-name patterns and markers of each tool.

use super::flyway::{FlywayName, flyway_name};
use super::golang_migrate::golang_migrate_name;
use super::pairs::Direction;
use super::pop::pop_name;
use super::*;

#[test]
fn golang_migrate_names() {
    let (v, n, d, e) = golang_migrate_name("0001_initial_schema.up.sql").expect("match");
    assert_eq!(
        (v, n, d, e),
        ("0001", "initial_schema", Direction::Up, "sql")
    );
    assert!(golang_migrate_name("1_x.down.sql").is_some_and(|m| m.2 == Direction::Down));
    assert!(golang_migrate_name("x_1.up.sql").is_none());
    assert!(golang_migrate_name("1_x.sql").is_none());
}

#[test]
fn pop_names() {
    let m = pop_name("20240101_add.cockroach.autocommit.up.sql").expect("match");
    assert_eq!(
        (m.version, m.name, m.dialect, m.autocommit),
        ("20240101", "add", Some("cockroach"), true)
    );
    let m = pop_name("1_a.autocommit.down.sql").expect("match");
    assert!(m.autocommit && m.dialect.is_none() && m.direction == Direction::Down);
    assert!(pop_name("1_a.up.fizz").is_some_and(|m| m.fizz));
    assert!(pop_name("1_a.b.c.d.up.sql").is_none());
    assert!(pop_name("1_a.sql").is_none());
}

#[test]
fn flyway_names() {
    assert!(matches!(
        flyway_name("V1_1__add_x.sql"),
        FlywayName::Versioned(Direction::Up, "1_1", "add_x")
    ));
    assert!(matches!(
        flyway_name("U2.0.1__undo.sql"),
        FlywayName::Versioned(Direction::Down, "2.0.1", _)
    ));
    assert!(matches!(
        flyway_name("R__views.sql"),
        FlywayName::Refused(_)
    ));
    assert!(matches!(
        flyway_name("afterMigrate.sql"),
        FlywayName::Refused(_)
    ));
    assert!(matches!(
        flyway_name("B5__base.sql"),
        FlywayName::Refused(_)
    ));
    assert!(matches!(flyway_name("notes.sql"), FlywayName::Other));
    assert!(matches!(flyway_name("V1__x.txt"), FlywayName::Other));
}

#[test]
fn statements_outside_a_transaction() {
    assert!(outside_transaction(
        "create unique index concurrently i on t (a)"
    ));
    assert!(outside_transaction("DROP INDEX CONCURRENTLY IF EXISTS i"));
    assert!(outside_transaction("REINDEX TABLE CONCURRENTLY t"));
    assert!(outside_transaction("VACUUM ANALYZE t"));
    assert!(!outside_transaction("CREATE INDEX i ON t (a)"));
    assert!(!outside_transaction(
        "REFRESH MATERIALIZED VIEW CONCURRENTLY v"
    ));
    assert!(!outside_transaction("-- VACUUM\nSELECT 1"));
}

#[test]
fn markers() {
    assert_eq!(goose_annotation("-- +goose Up").as_deref(), Some("up"));
    assert_eq!(
        goose_annotation("--+goose NO TRANSACTION  ").as_deref(),
        Some("no transaction")
    );
    assert_eq!(goose_annotation("-- plain comment"), None);
    assert_eq!(
        dbmate_marker("-- migrate:up transaction:false"),
        Some(("up", vec!["transaction:false".to_string()]))
    );
    assert_eq!(dbmate_marker("--migrate:down").map(|m| m.0), Some("down"));
    assert_eq!(dbmate_marker("-- migrate:upper"), None);
}

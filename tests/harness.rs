//! Checks of the integration-test harness itself (`tests/support`), against a real server.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{CustomOpts, Flavour, fresh_db, psql, server, try_psql, wait_until};

#[test]
fn server_starts_and_answers() {
    let s = server();
    assert!(s.port() > 0);
    let version = psql(&s.maintenance_url(), "select version()");
    match s.flavour() {
        Flavour::Postgres => {
            assert!(version.starts_with("PostgreSQL"), "{version}");
            // The concurrency tests need room for 20 migrators at once.
            let url = s.maintenance_url();
            assert_eq!(psql(&url, "SHOW max_connections"), "200");
            assert_eq!(psql(&url, "SHOW fsync"), "off");
        }
        Flavour::Cockroach => assert!(version.contains("CockroachDB"), "{version}"),
    }
    eprintln!("server startup took {:?}", s.startup_time());
}

#[test]
fn fresh_dbs_are_distinct_and_usable_in_parallel() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let db = fresh_db("parallel");
                psql(
                    &db.url,
                    &format!("CREATE TABLE t (v INT8); INSERT INTO t VALUES ({i});"),
                );
                (db, i)
            })
        })
        .collect();
    let dbs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut names: Vec<_> = dbs.iter().map(|(db, _)| db.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), dbs.len(), "names must be unique: {names:?}");
    for (db, i) in &dbs {
        // Each database sees only its own row: they really are separate databases.
        assert_eq!(psql(&db.url, "SELECT v FROM t"), i.to_string());
        assert_eq!(psql(&db.url, "SELECT current_database()"), db.name);
        assert!(
            db.url.starts_with("postgresql://") && db.url.ends_with("?sslmode=disable"),
            "{}",
            db.url
        );
    }
}

#[test]
fn psql_round_trips_and_reports_errors() {
    let db = fresh_db("psql round trip");
    psql(
        &db.url,
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v INT8);\n\
         INSERT INTO kv VALUES ('a', 1), ('b', 2);",
    );
    assert_eq!(psql(&db.url, "SELECT k, v FROM kv ORDER BY k"), "a|1\nb|2");
    let err = try_psql(&db.url, "SELECT * FROM no_such_table").unwrap_err();
    assert!(err.contains("no_such_table"), "{err}");
    // ON_ERROR_STOP: nothing after the failing statement runs.
    assert!(try_psql(&db.url, "SELECT 1/0; INSERT INTO kv VALUES ('c', 3);").is_err());
    assert_eq!(psql(&db.url, "SELECT count(*) FROM kv"), "2");
}

#[test]
fn wait_until_returns_once_the_condition_holds() {
    let t0 = Instant::now();
    let mut calls = 0;
    wait_until(Duration::from_secs(5), "third call", || {
        calls += 1;
        calls == 3
    });
    assert_eq!(calls, 3);
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
#[should_panic(expected = "timed out after 100ms waiting for the impossible")]
fn wait_until_panics_at_the_deadline() {
    wait_until(Duration::from_millis(100), "the impossible", || false);
}

#[test]
fn custom_server_applies_extra_settings_roles_and_hba() {
    let custom = support::start_custom(CustomOpts {
        conf: vec!["work_mem = '7MB'".into()],
        hba: Some("host all all 127.0.0.1/32 scram-sha-256".into()),
        roles: vec![("app".into(), "s3cr'et".into())],
        files: vec![("note.txt".into(), b"hello".to_vec())],
    });
    assert_ne!(custom.port(), server().port());
    assert_eq!(psql(&custom.admin_url("postgres"), "SHOW work_mem"), "7MB");

    // TCP now needs the password: the role works with it and is refused without it.
    let good = format!(
        "{}?sslmode=disable",
        custom.url("app", Some("s3cr'et"), "postgres")
    );
    assert_eq!(psql(&good, "SELECT current_user"), "app");
    let bad = format!(
        "{}?sslmode=disable",
        custom.url("app", Some("wrong"), "postgres")
    );
    let err = try_psql(&bad, "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");

    let note = custom.data_dir().join("note.txt");
    assert_eq!(std::fs::read(&note).unwrap(), b"hello");
    let dir = custom.data_dir();
    drop(custom);
    assert!(!dir.exists(), "custom server's directory removed on drop");
}

#[test]
fn binary_under_test_exists() {
    let path = Path::new(env!("CARGO_BIN_EXE_crdb-migrate"));
    assert!(path.is_file(), "{path:?}");
    let out = support::run(&mut support::bin());
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn custom_server_that_cannot_start_reports_its_log_promptly() {
    let t0 = Instant::now();
    let err = support::try_start_custom(CustomOpts {
        conf: vec!["ssl = on".into(), "ssl_cert_file = 'missing.crt'".into()],
        ..CustomOpts::default()
    })
    .err()
    .expect("ssl = on without a certificate must not start");
    assert!(err.contains("missing.crt"), "{err}");
    // The supervisor exits with the server: no waiting for the readiness deadline.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

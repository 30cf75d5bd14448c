//! Checks of the integration-test harness itself (`tests/support`), against a real server,
//! including the fault-injecting proxy: latency, cuts, stalls and the flight count.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{
    ConnMatch, ConnStats, CustomOpts, Dir, Fault, Flavour, Proxy, Stats, fresh_db, psql, server,
    try_psql, wait_until,
};

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
    let out = support::run(support::bin().arg("--version"));
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

// ---------------------------------------------------------------------------------------------
// The fault-injecting proxy (tests/support/proxy.rs)
// ---------------------------------------------------------------------------------------------

/// A tokio-postgres client through `url`, its connection driven on this runtime.
async fn pg_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The number of the one connection in `stats`.
fn only_conn(stats: &Stats) -> &ConnStats {
    assert_eq!(stats.conns.len(), 1, "{stats:?}");
    &stats.conns[0]
}

#[test]
fn proxy_url_points_at_the_proxy_and_keeps_the_rest() {
    let proxy = Proxy::to_server();
    let p = proxy.port();
    assert_eq!(
        proxy.url("postgresql://u:p%40ss@db.example:26257/app?sslmode=disable"),
        format!("postgresql://u:p%40ss@127.0.0.1:{p}/app?sslmode=disable")
    );
    assert_eq!(
        proxy.url("postgres://h1:1,h2:2?x=1"),
        format!("postgres://127.0.0.1:{p}?x=1")
    );
    let db = fresh_db("proxy url");
    assert_eq!(
        psql(&proxy.url(&db.url), "SELECT current_database()"),
        db.name
    );
}

#[tokio::test]
async fn proxy_latency_is_added_in_each_direction() {
    let db = fresh_db("proxy latency");
    let proxy = Proxy::to_server();
    let client = pg_client(&proxy.url(&db.url)).await.expect("connect");
    proxy.set_latency(Dir::ClientToServer, Duration::from_millis(50));
    proxy.set_latency(Dir::ServerToClient, Duration::from_millis(50));
    let t0 = Instant::now();
    let rows = client.simple_query("SELECT 1").await.expect("query");
    let rtt = t0.elapsed();
    assert!(!rows.is_empty());
    // A lower bound only: a busy machine may add time, it cannot take the 2 x 50 ms away.
    assert!(rtt >= Duration::from_millis(100), "round trip {rtt:?}");
}

#[test]
fn proxy_cut_at_a_message_closes_that_connection_and_the_next_passes() {
    let db = fresh_db("proxy cut");
    let proxy = Proxy::to_server();
    let url = proxy.url(&db.url);

    // Client message 2 is psql's query (1 is the StartupMessage; trust needs no password).
    let id = proxy.arm_once(Fault::CutAt {
        dir: Dir::ClientToServer,
        message: 2,
        conn: ConnMatch::All,
    });
    let err = try_psql(&url, "SELECT 1").expect_err("the query's connection is cut");
    assert!(err.contains("closed the connection"), "{err}");
    assert_eq!(proxy.fired(id), 1);
    assert_eq!(
        psql(&url, "SELECT 1"),
        "1",
        "one-shot: the next connection passes"
    );
    assert_eq!(proxy.fired(id), 1);

    // The server's first message (AuthenticationOk) on the next connection only.
    let next = proxy.accepted() + 1;
    let id = proxy.arm(Fault::CutAt {
        dir: Dir::ServerToClient,
        message: 1,
        conn: ConnMatch::Nth(next),
    });
    assert!(try_psql(&url, "SELECT 1").is_err());
    assert_eq!(psql(&url, "SELECT 2"), "2");
    assert_eq!(proxy.fired(id), 1);
    let stats = proxy.stats();
    let cut = stats.conn(next).expect("the cut connection");
    assert_eq!(cut.messages(Dir::ServerToClient), 0, "{cut:?}");
    assert_eq!(cut.tags(Dir::ClientToServer), "_", "{cut:?}");

    // By bytes: 5 bytes of the StartupMessage get through, then the cut.
    let id = proxy.arm_once(Fault::CutAfterBytes {
        dir: Dir::ClientToServer,
        bytes: 5,
        conn: ConnMatch::All,
    });
    assert!(try_psql(&url, "SELECT 1").is_err());
    assert_eq!(proxy.fired(id), 1);
    let n = proxy.accepted();
    assert_eq!(proxy.stats().conn(n).map(|c| c.bytes_to_server), Some(5));
    assert_eq!(psql(&url, "SELECT 3"), "3");

    // By application_name, armed until disarmed: only the matching connections are cut.
    let victim = format!("{url}&application_name=victim");
    let id = proxy.arm(Fault::CutAt {
        dir: Dir::ClientToServer,
        message: 2,
        conn: ConnMatch::ApplicationName("victim".into()),
    });
    assert!(try_psql(&victim, "SELECT 1").is_err());
    assert!(try_psql(&victim, "SELECT 1").is_err());
    assert_eq!(psql(&url, "SELECT 4"), "4");
    assert_eq!(proxy.fired(id), 2);
    proxy.disarm(id);
    assert_eq!(psql(&victim, "SELECT 5"), "5");
}

#[tokio::test]
async fn proxy_stall_makes_a_timed_client_give_up_and_the_next_passes() {
    let db = fresh_db("proxy stall");
    let proxy = Proxy::to_server();
    let url = proxy.url(&db.url);
    let give_up = Duration::from_secs(1);

    let id = proxy.arm_once(Fault::Stall {
        conn: ConnMatch::All,
    });
    let stalled = tokio::time::timeout(give_up, pg_client(&url)).await;
    assert!(stalled.is_err(), "a stalled connection never answers");
    assert_eq!(proxy.fired(id), 1);
    let n = proxy.accepted();
    // The client gave up and closed: the proxy lets go of the socket too.
    wait_until(
        Duration::from_secs(10),
        "the stalled connection closed",
        || proxy.stats().conn(n).is_some_and(|c| !c.open),
    );

    // Stalled after the server's first message, on a connection matched by database.
    let id = proxy.arm_once(Fault::StallAt {
        dir: Dir::ServerToClient,
        message: 1,
        conn: ConnMatch::Database(db.name.clone()),
    });
    let stalled = tokio::time::timeout(give_up, pg_client(&url)).await;
    assert!(stalled.is_err(), "stalled after the StartupMessage");
    assert_eq!(proxy.fired(id), 1);

    let client = tokio::time::timeout(Duration::from_secs(10), pg_client(&url))
        .await
        .expect("the next connection is not stalled")
        .expect("connect");
    let rows = client.simple_query("SELECT 1").await.expect("query");
    assert!(!rows.is_empty());
}

#[tokio::test]
async fn proxy_counts_flights_one_for_a_pipelined_batch() {
    let db = fresh_db("proxy flights");
    let proxy = Proxy::to_server();
    let client = pg_client(&proxy.url(&db.url)).await.expect("connect");
    let stats = proxy.stats();
    let conn = only_conn(&stats);
    assert_eq!(
        conn.flights, 1,
        "the StartupMessage is one flight: {conn:?}"
    );
    assert_eq!(conn.tags(Dir::ClientToServer), "_");
    let startup = conn.startup.clone().expect("startup seen");
    assert_eq!(startup.database.as_deref(), Some(db.name.as_str()));

    proxy.reset_stats();
    client.simple_query("SELECT 1").await.expect("query");
    let stats = proxy.stats();
    assert_eq!(only_conn(&stats).flights, 1);
    assert_eq!(only_conn(&stats).tags(Dir::ClientToServer), "Q");

    proxy.reset_stats();
    client.simple_query("SELECT 1").await.expect("query");
    client.simple_query("SELECT 2").await.expect("query");
    assert_eq!(
        proxy.stats().flights(),
        2,
        "one after the other: two round trips"
    );

    proxy.reset_stats();
    let (a, b) = tokio::join!(
        client.simple_query("SELECT 1"),
        client.simple_query("SELECT 2")
    );
    a.expect("first");
    b.expect("second");
    let stats = proxy.stats();
    assert_eq!(
        stats.flights(),
        1,
        "joined on one client: pipelined, one round trip"
    );
    assert_eq!(only_conn(&stats).tags(Dir::ClientToServer), "QQ");
    assert_eq!(stats.messages(Dir::ClientToServer), 2);

    // Prepared statements: each execution is Bind, Execute, Sync; two joined are one flight.
    let stmt = client.prepare("SELECT $1::INT8").await.expect("prepare");
    proxy.reset_stats();
    let (a, b) = tokio::join!(client.query(&stmt, &[&1i64]), client.query(&stmt, &[&2i64]));
    assert_eq!(a.expect("first")[0].get::<_, i64>(0), 1);
    assert_eq!(b.expect("second")[0].get::<_, i64>(0), 2);
    let stats = proxy.stats();
    assert_eq!(stats.flights(), 1);
    assert_eq!(only_conn(&stats).tags(Dir::ClientToServer), "BESBES");
}

#[test]
fn proxy_parses_an_ssl_request_answered_no() {
    let db = fresh_db("proxy sslrequest");
    let proxy = Proxy::to_server();
    let url = proxy
        .url(&db.url)
        .replace("sslmode=disable", "sslmode=prefer")
        + "&application_name=ssl_probe";
    assert_eq!(psql(&url, "SELECT 1"), "1");
    let n = proxy.accepted();
    wait_until(Duration::from_secs(10), "psql's connection closed", || {
        proxy.stats().conn(n).is_some_and(|c| !c.open)
    });
    let stats = proxy.stats();
    let c = stats.conn(n).expect("psql's connection");
    // SSLRequest, StartupMessage (both untyped), the query; the server's one-byte 'N' first.
    assert!(c.tags(Dir::ClientToServer).starts_with("__Q"), "{c:?}");
    assert!(c.tags(Dir::ServerToClient).starts_with("NR"), "{c:?}");
    assert!(!c.encrypted);
    let startup = c
        .startup
        .clone()
        .expect("startup seen after the SSLRequest");
    assert_eq!(startup.application_name.as_deref(), Some("ssl_probe"));
}

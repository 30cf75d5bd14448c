//! Connecting against real servers: TLS modes and client certificates in each key
//! format, authentication failures, waiting for a server that is late or silent, host lists, and
//! the missing-database flow. Tests go through the library (`DbUrl::parse` +
//! `wait_and_connect`) and check the exit class each error maps to.
//!
//! Certificates are made here with the `openssl` CLI; a separate PostgreSQL with `ssl = on`
//! and a pg_hba demanding `cert` for one role and scram for another is started once per binary.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crdb_migrate::Error as ConnectError;
use crdb_migrate::connection::{DbUrl, Flavour, wait_and_connect};
use support::tls::{self, Certs, openssl};
use support::{CustomOpts, CustomServer, free_port, psql, server, start_custom};

const SCRAM_PASSWORD: &str = "c0rrect-H0rse:b@ttery%";

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// Signs `<name>.key` into `<name>.crt` with CA `ca`, with the extensions in `ext`.
fn sign(dir: &Path, name: &str, cn: &str, ca: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    tls::sign(dir, name, ca, Some(ext), 2);
}

const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let c = Certs::fresh("connect");
        let dir = c.dir();
        make_ca(dir, "ca");
        make_ca(dir, "other-ca");
        // The server certificate names only DNS:localhost, so connecting by 127.0.0.1 is a
        // host name mismatch (verify-full refuses, verify-ca accepts).
        openssl(dir, &["genrsa", "-out", "server.key", "2048"]);
        sign(
            dir,
            "server",
            "localhost",
            "ca",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n",
        );
        // Client keys in each PEM format, all for role certuser.
        openssl(
            dir,
            &["genrsa", "-traditional", "-out", "pkcs1.key", "2048"],
        );
        openssl(dir, &["genpkey", "-algorithm", "RSA", "-out", "pkcs8.key"]);
        // `ecparam -genkey` writes an EC PARAMETERS block before the EC PRIVATE KEY, as found in
        // the wild; the loader must skip it.
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-out",
                "sec1.key",
            ],
        );
        for k in ["pkcs1", "pkcs8", "sec1"] {
            sign(dir, k, "certuser", "ca", CLIENT_EXT);
        }
        // A client certificate from a CA the server does not trust.
        openssl(dir, &["genpkey", "-algorithm", "RSA", "-out", "rogue.key"]);
        sign(dir, "rogue", "certuser", "other-ca", CLIENT_EXT);

        let pem = |n: &str| String::from_utf8(c.read(n)).unwrap();
        assert!(pem("pkcs1.key").contains("BEGIN RSA PRIVATE KEY"));
        assert!(pem("pkcs8.key").contains("BEGIN PRIVATE KEY"));
        assert!(pem("sec1.key").contains("BEGIN EC PRIVATE KEY"));
        c
    })
}

/// PostgreSQL with TLS on: `cert` for certuser, scram for scramuser, plain text refused.
fn tls_server() -> &'static CustomServer {
    static SERVER: OnceLock<CustomServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let c = certs();
        tls::start_tls_server(
            c,
            "server",
            c.read("ca.crt"),
            Some(("scramuser", SCRAM_PASSWORD)),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The exit code each outcome maps to (docs/commands.md, "Exit codes").
fn exit_code(
    r: &Result<(tokio_postgres::Client, crdb_migrate::connection::ServerInfo), ConnectError>,
) -> u8 {
    match r {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error (exit {}): {e}", e.exit().code());
            e.exit().code()
        }
    }
}

async fn connect(
    url: &str,
    wait: Duration,
    create: bool,
) -> Result<(tokio_postgres::Client, crdb_migrate::connection::ServerInfo), ConnectError> {
    let url = DbUrl::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    wait_and_connect(&url, wait, create).await
}

/// A URL to the TLS server as `user`, by `host` (`localhost` matches the certificate,
/// `127.0.0.1` does not), with the given query.
fn tls_url(user: &str, password: Option<&str>, host: &str, query: &str) -> String {
    tls::url(tls_server(), user, password, host, "postgres", query)
}

fn client_cert_query(mode: &str, key: &str) -> String {
    tls::client_query(certs(), mode, "ca", key, key)
}

async fn assert_current_user(
    r: Result<(tokio_postgres::Client, crdb_migrate::connection::ServerInfo), ConnectError>,
    user: &str,
) {
    let (client, info) = r.unwrap_or_else(|e| panic!("expected success, got {e} ({e:?})"));
    assert_eq!(info.flavour, Flavour::PostgreSQL);
    let row = client.query_one("SELECT current_user, ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    let who: String = row.get(0);
    let ssl: bool = row.get(1);
    assert_eq!(who, user);
    assert!(ssl, "the connection must be encrypted");
    let app: String = client
        .query_one("SELECT current_setting('application_name')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(app, "crdb-migrate");
}

// ---------------------------------------------------------------------------------------------
// TLS and authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn verify_full_with_client_cert_pkcs1() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        &client_cert_query("verify-full", "pkcs1"),
    );
    assert_current_user(
        connect(&url, Duration::from_secs(20), false).await,
        "certuser",
    )
    .await;
}

#[tokio::test]
async fn verify_full_with_client_cert_pkcs8() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        &client_cert_query("verify-full", "pkcs8"),
    );
    assert_current_user(
        connect(&url, Duration::from_secs(20), false).await,
        "certuser",
    )
    .await;
}

#[tokio::test]
async fn verify_full_with_client_cert_sec1() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        &client_cert_query("verify-full", "sec1"),
    );
    assert_current_user(
        connect(&url, Duration::from_secs(20), false).await,
        "certuser",
    )
    .await;
}

#[tokio::test]
async fn scram_over_verify_full_with_percent_encoded_password() {
    let c = certs();
    let q = format!("sslmode=verify-full&sslrootcert={}", c.path("ca.crt"));
    let url = tls_url("scramuser", Some(SCRAM_PASSWORD), "localhost", &q);
    assert_current_user(
        connect(&url, Duration::from_secs(20), false).await,
        "scramuser",
    )
    .await;
}

#[tokio::test]
async fn untrusted_ca_is_a_tls_rejection() {
    let c = certs();
    let q = format!("sslmode=verify-full&sslrootcert={}", c.path("other-ca.crt"));
    let url = tls_url("scramuser", Some(SCRAM_PASSWORD), "localhost", &q);
    let t = Instant::now();
    let r = connect(&url, Duration::from_secs(30), false).await;
    assert!(
        matches!(r, Err(ConnectError::Tls(_))),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(exit_code(&r), 21);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "permanent: no retries ({:?})",
        t.elapsed()
    );
}

#[tokio::test]
async fn host_name_not_in_certificate_fails_verify_full_but_passes_verify_ca() {
    let full = tls_url(
        "certuser",
        None,
        "127.0.0.1",
        &client_cert_query("verify-full", "pkcs8"),
    );
    let r = connect(&full, Duration::from_secs(30), false).await;
    assert!(
        matches!(r, Err(ConnectError::Tls(_))),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(exit_code(&r), 21);

    let ca = tls_url(
        "certuser",
        None,
        "127.0.0.1",
        &client_cert_query("verify-ca", "pkcs8"),
    );
    assert_current_user(
        connect(&ca, Duration::from_secs(20), false).await,
        "certuser",
    )
    .await;
}

#[tokio::test]
async fn require_encrypts_without_verifying() {
    // No sslrootcert: any certificate is accepted (as libpq), but the link is encrypted.
    let url = tls_url(
        "scramuser",
        Some(SCRAM_PASSWORD),
        "127.0.0.1",
        "sslmode=require",
    );
    assert_current_user(
        connect(&url, Duration::from_secs(20), false).await,
        "scramuser",
    )
    .await;
}

#[tokio::test]
async fn client_cert_from_an_untrusted_ca_is_rejected() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        &client_cert_query("verify-full", "rogue"),
    );
    let r = connect(&url, Duration::from_secs(30), false).await;
    assert_eq!(exit_code(&r), 21, "{:?}", r.as_ref().err());
}

#[tokio::test]
async fn wrong_password_is_auth_and_never_shown() {
    let c = certs();
    let wrong = "Wr0ng-Pa55word-XYZ";
    let q = format!("sslmode=verify-full&sslrootcert={}", c.path("ca.crt"));
    let url = tls_url("scramuser", Some(wrong), "localhost", &q);
    let t = Instant::now();
    let r = connect(&url, Duration::from_secs(30), false).await;
    let e = r.as_ref().expect_err("must fail");
    assert!(matches!(e, ConnectError::Auth(_)), "{e:?}");
    assert_eq!(exit_code(&r), 21);
    assert!(!e.to_string().contains(wrong), "{e}");
    assert!(!format!("{e:?}").contains(wrong), "{e:?}");
    let parsed = DbUrl::parse(&url).unwrap();
    assert!(!format!("{parsed:?}").contains(wrong));
    assert!(!parsed.redacted().contains(wrong));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "permanent: no retries ({:?})",
        t.elapsed()
    );
}

#[tokio::test]
async fn server_rejecting_plain_text_is_auth() {
    let url = tls_url(
        "scramuser",
        Some(SCRAM_PASSWORD),
        "localhost",
        "sslmode=disable",
    );
    let r = connect(&url, Duration::from_secs(30), false).await;
    assert!(
        matches!(r, Err(ConnectError::Auth(_))),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(exit_code(&r), 21);
}

#[tokio::test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: an insecure CockroachDB refuses TLS otherwise, and its database is not `postgres`"
)]
async fn require_against_a_server_without_tls_is_tls_rejection() {
    // The shared server runs with ssl = off (PostgreSQL's default).
    let s = server();
    let url = s
        .admin_url("postgres")
        .replace("sslmode=disable", "sslmode=require");
    let r = connect(&url, Duration::from_secs(30), false).await;
    assert!(
        matches!(r, Err(ConnectError::Tls(_))),
        "{:?}",
        r.as_ref().err()
    );
    // prefer falls back to plain text.
    let url = s
        .admin_url("postgres")
        .replace("sslmode=disable", "sslmode=prefer");
    let (_client, info) = connect(&url, Duration::from_secs(30), false).await.unwrap();
    assert!(!info.version.is_empty());
}

#[tokio::test]
async fn missing_certificate_file_is_config_naming_it() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
    );
    let e = DbUrl::parse(&url).unwrap_err();
    match &e {
        ConnectError::Url { param, .. } => assert_eq!(param, "sslrootcert"),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.exit().code(), 20);
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nothing_listening_is_unreachable_in_bounded_time() {
    let port = free_port();
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/db?sslmode=disable");
    let t = Instant::now();
    let r = connect(&url, Duration::from_secs(2), false).await;
    let elapsed = t.elapsed();
    assert!(
        matches!(r, Err(ConnectError::Unreachable { .. })),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(exit_code(&r), 10);
    assert!(
        elapsed >= Duration::from_secs(2),
        "waited the whole timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn silent_listener_is_unreachable_in_bounded_time() {
    // A listening socket that nobody accepts from: the kernel completes the TCP handshake,
    // then nothing is ever said. Each attempt must give up after connect_timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for mode in ["disable", "prefer"] {
        let url = format!("postgresql://u:pw@127.0.0.1:{port}/db?sslmode={mode}&connect_timeout=1");
        let t = Instant::now();
        let r = connect(&url, Duration::from_secs(3), false).await;
        let elapsed = t.elapsed();
        match &r {
            Err(ConnectError::Unreachable { attempts, .. }) => assert!(*attempts >= 2),
            other => panic!("{mode}: {:?}", other.as_ref().err()),
        }
        assert_eq!(exit_code(&r), 10);
        assert!(elapsed < Duration::from_secs(10), "{mode}: {elapsed:?}");
    }
    drop(listener);
}

/// Copies bytes both ways between two sockets until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if a.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = a.shutdown(Shutdown::Write);
    });
}

#[tokio::test]
async fn server_that_starts_late_is_waited_for() {
    // The scenario: at the call, nothing listens on `port`. About two seconds later a fresh
    // PostgreSQL is started and put behind `port` (the harness picks its own port, so a
    // forwarder stands in front of it).
    let port = free_port();
    let (tx, rx) = std::sync::mpsc::channel::<CustomServer>();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        let pg = start_custom(CustomOpts::default());
        let upstream = pg.port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the late port");
        tx.send(pg).unwrap();
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                break;
            };
            pipe(conn, up);
        }
    });
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable");
    let t = Instant::now();
    let r = connect(&url, Duration::from_secs(60), false).await;
    let elapsed = t.elapsed();
    let (client, _info) = r.unwrap_or_else(|e| panic!("{e}"));
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let _pg = rx.recv().unwrap(); // stopped when dropped at the end of the test
    drop(starter); // the forwarder thread ends with the process
}

#[tokio::test]
async fn host_list_skips_a_dead_first_host() {
    let s = server();
    let dead = free_port();
    let url = format!(
        "postgresql://{}@127.0.0.1:{dead},127.0.0.1:{}/{}?sslmode=disable",
        s.user(),
        s.port(),
        if s.flavour() == support::Flavour::Postgres {
            "postgres"
        } else {
            "defaultdb"
        }
    );
    let t = Instant::now();
    let (client, _) = connect(&url, Duration::from_secs(20), false).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "no wait needed: {:?}",
        t.elapsed()
    );
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

// ---------------------------------------------------------------------------------------------
// Missing database
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_database_is_no_database_or_created() {
    let s = server();
    // A name that needs quoting: upper case, a space and a double quote.
    let name = format!("Created \"by\" connect {}", std::process::id());
    let encoded = name.replace(' ', "%20").replace('"', "%22");
    let url = s.admin_url("PLACEHOLDER").replace("PLACEHOLDER", &encoded);

    let t = Instant::now();
    let r = connect(&url, Duration::from_secs(30), false).await;
    match &r {
        Err(ConnectError::NoDatabase(db)) => assert_eq!(db, &name),
        other => panic!("{:?}", other.as_ref().err()),
    }
    assert_eq!(exit_code(&r), 20);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "permanent: no retries"
    );

    let (client, _) = connect(&url, Duration::from_secs(30), true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let current: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, name);
    let count = psql(
        &s.maintenance_url(),
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            support::quote_literal(&name)
        ),
    );
    assert_eq!(count, "1");
    // Creating again is harmless (IF NOT EXISTS semantics).
    connect(&url, Duration::from_secs(30), true).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Other URL parts against a real server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: `-c name=value` is PostgreSQL's options syntax"
)]
async fn options_and_application_name_reach_the_server() {
    let s = server();
    let url = s.admin_url("postgres").replace(
        "sslmode=disable",
        "sslmode=disable&options=-c%20statement_timeout%3D4321&application_name=migrator%201",
    );
    let (client, _) = connect(&url, Duration::from_secs(20), false).await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('application_name')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "4321ms");
    assert_eq!(row.get::<_, String>(1), "migrator 1");

    // A startup parameter the server refuses: a configuration error naming `options`.
    let bad = s.admin_url("postgres").replace(
        "sslmode=disable",
        "sslmode=disable&options=-c%20no_such_setting_here%3D1",
    );
    let t = Instant::now();
    let r = connect(&bad, Duration::from_secs(20), false).await;
    match &r {
        Err(ConnectError::Url { param, .. }) => assert_eq!(param, "options"),
        other => panic!("{:?}", other.as_ref().err()),
    }
    assert_eq!(exit_code(&r), 20);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn unix_socket_host() {
    // The TLS server's admin URL is `postgresql://postgres@/postgres?host=<dir>&port=<n>`;
    // ours takes the directory percent-encoded in the host part instead.
    let admin = tls_server().admin_url("postgres");
    let query = admin.split_once('?').unwrap().1;
    let mut dir = "";
    let mut port = "";
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("host", v)) => dir = v,
            Some(("port", v)) => port = v,
            _ => {}
        }
    }
    let url = format!(
        "postgresql://postgres@{}:{port}/postgres?sslmode=prefer",
        dir.replace('/', "%2F")
    );
    let (client, _) = connect(&url, Duration::from_secs(20), false).await.unwrap();
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

// ---------------------------------------------------------------------------------------------
// The same outcomes through the binary: exit codes, and nothing secret in any output
// ---------------------------------------------------------------------------------------------

fn run_binary(url: &str, dir: &Path, extra: &[(&str, &str)]) -> (support::Output, String) {
    let term = tempfile::NamedTempFile::new().expect("tmp");
    let mut cmd = support::bin_at(url, dir);
    cmd.env("MIGRATE_WAIT_TIMEOUT", "20s")
        .env("MIGRATE_TERMINATION_LOG", term.path());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = support::run(&mut cmd);
    let message = std::fs::read_to_string(term.path()).expect("termination message");
    (out, message)
}

#[test]
fn binary_wrong_password_is_21_and_the_password_appears_nowhere() {
    let c = certs();
    let wrong = "Wr0ng-Pa55word-XYZ";
    let q = format!("sslmode=verify-full&sslrootcert={}", c.path("ca.crt"));
    let url = tls_url("scramuser", Some(wrong), "localhost", &q);
    let dir = tls::one_migration("connect_t");
    let (out, message) = run_binary(&url, dir.path(), &[]);
    out.expect_code(21);
    for text in [&out.stdout, &out.stderr, &message] {
        assert!(!text.contains(wrong), "password leaked: {text}");
    }
    let m: serde_json::Value = serde_json::from_str(&message).expect("json");
    assert_eq!(m["exit_code"], 21);
}

#[test]
fn binary_verify_full_with_a_client_certificate_migrates() {
    let url = tls_url(
        "certuser",
        None,
        "localhost",
        &client_cert_query("verify-full", "pkcs1"),
    );
    let dir = tls::one_migration("connect_t");
    // certuser may not create tables in `postgres` on PostgreSQL 15: give it its own schema.
    psql(
        &tls_server().admin_url("postgres"),
        "CREATE SCHEMA IF NOT EXISTS certuser AUTHORIZATION certuser",
    );
    let (out, _) = run_binary(&url, dir.path(), &[]);
    out.expect_code(0);
    assert!(out.has_event("db.ready"), "{}", out.stdout);
    assert!(out.has_event("migration.applied"), "{}", out.stdout);
}

#[test]
fn binary_missing_database_is_20_and_created_and_migrated_on_request() {
    let s = server();
    let name = format!("bluegreen_{}", std::process::id());
    let url = s.admin_url(&name);
    let dir = tls::one_migration("connect_t");
    let (out, _) = run_binary(&url, dir.path(), &[]);
    out.expect_code(20);
    assert!(out.stderr.contains(&name), "{}", out.stderr);
    let (out, _) = run_binary(&url, dir.path(), &[("MIGRATE_CREATE_DATABASE", "true")]);
    out.expect_code(0);
    assert_eq!(
        psql(&url, "SELECT count(*) FROM _migrations"),
        "1",
        "created and migrated"
    );
}

//! Sessions as real projects set them up, through the binary:
//!
//! - TLS with certificates made exactly as PostgreSQL's documentation shows (`openssl req -new
//!   -nodes -text ...` then `openssl x509 -req ...`, which OpenSSL 3 writes as X.509 v1 unless
//!   given extensions): a v1 client certificate under `verify-full`, a v1 client certificate
//!   with a key that is not its own, a v1 server certificate (accepted by `require`, refused by
//!   `verify-ca` with an error naming v1), and a v1 root CA in `sslrootcert`.
//! - `app.environment`: a `DO` block branching on
//!   `current_setting('app.environment')`, with `ENVIRONMENT` set, unset, and holding a quote.
//!
//! Each TLS case runs against its own PostgreSQL started with `ssl = on` and a pg_hba that
//! demands `cert` for role `certuser`; each test gets its own database owned by that role.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use support::tls::{self, Certs, openssl};
use support::{CustomServer, Output, TestDb, bin, fresh_db, psql, run};

// ---------------------------------------------------------------------------------------------
// Certificates, the PostgreSQL documentation's way
// ---------------------------------------------------------------------------------------------

/// The X.509 version openssl reads in `<name>.crt` ("1" or "3").
fn x509_version(dir: &Path, name: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &format!("{name}.crt")])
        .current_dir(dir)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Version: "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("?")
        .to_owned()
}

/// `openssl req -new -nodes -text -out <name>.csr -keyout <name>.key -subj "/CN=<cn>"`.
fn request(dir: &Path, name: &str, cn: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-text",
            "-out",
            &format!("{name}.csr"),
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
}

const ROOT_CNF: &str = "[ v3_ca ]\nsubjectKeyIdentifier=hash\n\
    authorityKeyIdentifier=keyid:always,issuer\nbasicConstraints=critical,CA:true\n\
    keyUsage=critical,keyCertSign,cRLSign\n";
const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
    extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n";

/// - `root`: the docs' root CA (`x509 -req ... -extensions v3_ca -signkey`): v3;
/// - `v1root`: a self-signed root made without extensions: v1;
/// - `server`: v3 with subjectAltName DNS:localhost, from `root`;
/// - `server_v1`: the docs' server certificate (no extensions), from `root`: v1;
/// - `server_of_v1root`: v3 with subjectAltName, from `v1root`;
/// - `client`: the docs' client certificate for `certuser`, from `root`: v1;
/// - `other`: just a key, which `client.crt` does not certify.
fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let c = Certs::fresh("real-sessions");
        let d = c.dir();

        request(d, "root", "root.example.test");
        std::fs::write(d.join("root.cnf"), ROOT_CNF).expect("write cnf");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "root.csr",
                "-text",
                "-days",
                "3650",
                "-extfile",
                "root.cnf",
                "-extensions",
                "v3_ca",
                "-signkey",
                "root.key",
                "-out",
                "root.crt",
            ],
        );
        request(d, "v1root", "v1root.example.test");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "v1root.csr",
                "-days",
                "3650",
                "-signkey",
                "v1root.key",
                "-out",
                "v1root.crt",
            ],
        );
        request(d, "server", "localhost");
        tls::sign(d, "server", "root", Some(SERVER_EXT), 365);
        request(d, "server_v1", "localhost");
        tls::sign(d, "server_v1", "root", None, 365);
        request(d, "server_of_v1root", "localhost");
        tls::sign(d, "server_of_v1root", "v1root", Some(SERVER_EXT), 365);
        request(d, "client", "certuser");
        tls::sign(d, "client", "root", None, 365);
        openssl(d, &["genpkey", "-algorithm", "RSA", "-out", "other.key"]);

        for (name, version) in [
            ("root", "3"),
            ("v1root", "1"),
            ("server", "3"),
            ("server_v1", "1"),
            ("server_of_v1root", "3"),
            ("client", "1"),
        ] {
            assert_eq!(x509_version(d, name), version, "{name}.crt");
        }
        c
    })
}

/// A PostgreSQL with `ssl = on` presenting `<server>.crt`, trusting `root` and `v1root` for
/// client certificates, and demanding `cert` for certuser.
fn tls_server(server: &str) -> CustomServer {
    let c = certs();
    let mut ca = c.read("root.crt");
    ca.extend(c.read("v1root.crt"));
    tls::start_tls_server(c, server, ca, None)
}

/// The server with the v3, subjectAltName certificate from `root`.
fn v3_server() -> &'static CustomServer {
    static S: OnceLock<CustomServer> = OnceLock::new();
    S.get_or_init(|| tls_server("server"))
}

/// The server with the documentation's v1 certificate.
fn v1_server() -> &'static CustomServer {
    static S: OnceLock<CustomServer> = OnceLock::new();
    S.get_or_init(|| tls_server("server_v1"))
}

/// The server whose v3 certificate was issued by the v1 root.
fn server_of_v1_root() -> &'static CustomServer {
    static S: OnceLock<CustomServer> = OnceLock::new();
    S.get_or_init(|| tls_server("server_of_v1root"))
}

/// A database of its own, owned by certuser (so it may create the ledger and tables).
fn certuser_db(s: &CustomServer, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("{tag}_{}", N.fetch_add(1, Ordering::Relaxed));
    psql(
        &s.admin_url("postgres"),
        &format!("CREATE DATABASE {name} OWNER certuser"),
    );
    name
}

/// The URL to `db` on `s` as certuser by `localhost`, with `query`.
fn tls_url(s: &CustomServer, db: &str, query: &str) -> String {
    tls::url(s, "certuser", None, "localhost", db, query)
}

fn client_query(mode: &str, root: &str, key: &str) -> String {
    tls::client_query(certs(), mode, root, "client", key)
}

fn migrate(url: &str, dir: &Path) -> Output {
    run(bin()
        .env("DATABASE_URL", url)
        .env("MIGRATIONS_DIR", dir)
        .env("MIGRATE_WAIT_TIMEOUT", "20s"))
}

/// The applied versions in `db` on `s`, read over the admin socket.
fn applied(s: &CustomServer, db: &str) -> String {
    psql(
        &s.admin_url(db),
        "SELECT coalesce(string_agg(version::text, ','), '') FROM _migrations",
    )
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_client_certificate_under_verify_full_migrates() {
    let s = v3_server();
    let db = certuser_db(s, "v1_client");
    let url = tls_url(s, &db, &client_query("verify-full", "root", "client"));
    let dir = tls::one_migration("tls_t");
    let out = migrate(&url, dir.path());
    out.expect_code(0);
    assert!(out.has_event("migration.applied"), "{}", out.stdout);
    assert_eq!(applied(s, &db), "1");
    // The server saw the client certificate and authenticated certuser by it.
    assert_eq!(
        psql(
            &s.admin_url(&db),
            "SELECT tableowner FROM pg_tables WHERE tablename = 'tls_t'"
        ),
        "certuser"
    );
}

#[test]
fn v1_client_certificate_with_a_key_it_does_not_certify_is_20() {
    let s = v3_server();
    let db = certuser_db(s, "v1_mismatch");
    let url = tls_url(s, &db, &client_query("verify-full", "root", "other"));
    let dir = tls::one_migration("tls_t");
    let out = migrate(&url, dir.path());
    out.expect_code(20);
    assert!(
        out.stderr.contains("sslkey") && out.stderr.contains("does not match"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("UnsupportedCertVersion"),
        "{}",
        out.stderr
    );
    assert_eq!(
        psql(
            &s.admin_url(&db),
            "SELECT count(*) FROM pg_tables WHERE tablename = '_migrations'"
        ),
        "0",
        "nothing reached the database"
    );
}

#[test]
fn v1_root_ca_in_sslrootcert_verifies_the_server() {
    let s = server_of_v1_root();
    let db = certuser_db(s, "v1_root");
    let url = tls_url(s, &db, &client_query("verify-full", "v1root", "client"));
    let dir = tls::one_migration("tls_t");
    migrate(&url, dir.path()).expect_code(0);
    assert_eq!(applied(s, &db), "1");
}

#[test]
fn v1_server_certificate_is_accepted_by_require_over_tls13() {
    let s = v1_server();
    let db = certuser_db(s, "v1_server_require");
    let c = certs();
    let q = format!(
        "sslmode=require&sslcert={}&sslkey={}",
        c.path("client.crt"),
        c.path("client.key")
    );
    let dir = tls::one_migration("tls_t");
    migrate(&tls_url(s, &db, &q), dir.path()).expect_code(0);
    assert_eq!(applied(s, &db), "1");
}

#[test]
fn v1_server_certificate_under_verify_ca_is_21_and_says_v1() {
    let s = v1_server();
    let db = certuser_db(s, "v1_server_verify");
    let url = tls_url(s, &db, &client_query("verify-ca", "root", "client"));
    let dir = tls::one_migration("tls_t");
    let out = migrate(&url, dir.path());
    out.expect_code(21);
    assert!(out.stderr.contains("X.509 v1"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// app.environment
// ---------------------------------------------------------------------------------------------

/// A migration that branches on `app.environment` in a `DO` block, plus the value recorded
/// for the test to read.
const SEED: &str = "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT);\n\
CREATE TABLE seen (env TEXT);\n\
INSERT INTO seen SELECT current_setting('app.environment');\n\
DO $$ BEGIN IF current_setting('app.environment') = 'production' THEN\n\
  INSERT INTO settings VALUES ('mode','prod'); END IF; END $$;\n\
-- @UNDO\n\
DROP TABLE seen;\n\
DROP TABLE settings;\n";

fn seeded(db: &TestDb, environment: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("1_seed.sql"), SEED).expect("write");
    let mut cmd = bin();
    cmd.env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "20s");
    if let Some(e) = environment {
        cmd.env("ENVIRONMENT", e);
    }
    run(&mut cmd).expect_code(0);
    (
        psql(
            &db.url,
            "SELECT coalesce(string_agg(k || '=' || v, ','), '') FROM settings",
        ),
        psql(&db.url, "SELECT env FROM seen"),
    )
}

#[test]
fn app_environment_production_takes_the_guides_branch() {
    let db = fresh_db("app_env_production");
    assert_eq!(
        seeded(&db, Some("production")),
        ("mode=prod".into(), "production".into())
    );
}

#[test]
fn app_environment_unset_is_empty_and_skips_the_branch() {
    let db = fresh_db("app_env_unset");
    assert_eq!(seeded(&db, None), (String::new(), String::new()));
}

#[test]
fn app_environment_other_value_is_recorded_and_skips_the_branch() {
    let db = fresh_db("app_env_staging");
    assert_eq!(
        seeded(&db, Some("staging")),
        (String::new(), "staging".into())
    );
}

#[test]
fn app_environment_with_quotes_and_sql_is_passed_verbatim() {
    let db = fresh_db("app_env_quote");
    let nasty = r"o'brien'; DROP TABLE settings; -- \' $$";
    let (settings, seen) = seeded(&db, Some(nasty));
    assert_eq!(
        settings, "",
        "the settings table survived and took no branch"
    );
    assert_eq!(seen, nasty);
}

//! Connecting: the DATABASE_URL, TLS, waiting for the server with backoff, and telling
//! transient failures (retry) from permanent ones (stop).
//!
//! - `url.rs` parses DATABASE_URL (libpq's keys, host lists, IPv6, percent-encoding);
//! - `tls.rs` builds the rustls configuration for the sslmode and loads the PEM files;
//! - `classify.rs` decides transient vs permanent from SQLSTATEs and error kinds;
//! - this file ties them into [`wait_and_connect`].
//!
//! The password lives only inside [`DbUrl`]; `Debug`, errors and log lines see
//! [`DbUrl::redacted`], and every failure text is scrubbed of the password before it leaves.

mod classify;
mod tls;
mod url;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, Socket};

pub use classify::{Facts, Verdict, classify, facts};
pub use url::{
    DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, Host, KNOWN_PARAMS, SslMode,
};

use crate::exit::Exit;

/// Which server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Flavour {
    /// CockroachDB.
    CockroachDB,
    /// PostgreSQL (or anything else speaking its protocol).
    PostgreSQL,
}

impl Flavour {
    /// Tells the flavour from the text of `SELECT version()`.
    pub fn from_version(version: &str) -> Flavour {
        if version.contains("CockroachDB") {
            Flavour::CockroachDB
        } else {
            Flavour::PostgreSQL
        }
    }

    /// The database every server of this flavour has, used to create the URL's database.
    pub fn default_database(self) -> &'static str {
        match self {
            Flavour::CockroachDB => "defaultdb",
            Flavour::PostgreSQL => "postgres",
        }
    }
}

/// What `SELECT version()` told us.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// The flavour.
    pub flavour: Flavour,
    /// The full `version()` string.
    pub version: String,
}

/// A parsed DATABASE_URL, with its TLS configuration loaded. `Debug` never shows the password.
#[derive(Clone)]
pub struct DbUrl {
    parsed: url::ParsedUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    redacted: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// DATABASE_URL (or a file it names) is malformed; `param` names the part at fault.
    #[error("DATABASE_URL: {param}: {message}")]
    Config {
        /// The URL part or query parameter at fault.
        param: String,
        /// What is wrong (never the password).
        message: String,
    },
    /// The server did not become ready within the wait timeout.
    #[error("database not ready after {attempts} attempts in {waited:?}: {last}")]
    Unreachable {
        /// How many attempts were made.
        attempts: u32,
        /// How long we waited.
        waited: Duration,
        /// The last failure.
        last: String,
    },
    /// Authentication was rejected.
    #[error("authentication rejected: {0}")]
    Auth(String),
    /// TLS was rejected (certificate verification, or the server demands TLS).
    #[error("TLS rejected: {0}")]
    Tls(String),
    /// The database named in the URL does not exist.
    #[error("database \"{0}\" does not exist (set MIGRATE_CREATE_DATABASE=true to create it)")]
    NoDatabase(String),
}

impl ConnectError {
    /// The exit code of SPEC §6 for this failure.
    pub fn exit(&self) -> Exit {
        match self {
            ConnectError::Config { .. } | ConnectError::NoDatabase(_) => Exit::BadInput,
            ConnectError::Unreachable { .. } => Exit::Unreachable,
            ConnectError::Auth(_) | ConnectError::Tls(_) => Exit::AuthRejected,
        }
    }
}

impl DbUrl {
    /// Parses a DATABASE_URL and loads the certificate and key files it names.
    pub fn parse(url: &str) -> Result<DbUrl, ConnectError> {
        let parsed = url::parse(url)?;
        let tls = tls::client_config(&parsed)?;
        let redacted = parsed.redacted();
        Ok(DbUrl {
            parsed,
            tls,
            redacted,
        })
    }

    /// The URL with the password replaced by `***`, for logs.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The database name in the URL.
    pub fn dbname(&self) -> Option<&str> {
        self.parsed.dbname.as_deref()
    }

    /// The user name in the URL.
    pub fn user(&self) -> Option<&str> {
        self.parsed.user.as_deref()
    }

    /// The hosts to try, in order.
    pub fn hosts(&self) -> &[Host] {
        &self.parsed.hosts
    }

    /// The sslmode (default `prefer`, as libpq).
    pub fn ssl_mode(&self) -> SslMode {
        self.parsed.sslmode
    }

    /// The `application_name` sent to the server (default `crdb-migrate`).
    pub fn application_name(&self) -> &str {
        &self.parsed.application_name
    }

    /// The per-attempt connection timeout (`None`: `connect_timeout=0`, bounded only by the
    /// wait timeout).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.parsed.connect_timeout
    }

    /// Removes the password from a text about to leave this module (belt and braces: the
    /// texts come from tokio-postgres and the server, which should never hold it anyway).
    fn scrub(&self, text: String) -> String {
        match self.parsed.password.as_deref() {
            Some(p) if !p.is_empty() && text.contains(p) => text.replace(p, "***"),
            _ => text,
        }
    }

    /// A tokio-postgres config for one host and database.
    fn pg_config(&self, host: &Host, dbname: Option<&str>) -> tokio_postgres::Config {
        let p = &self.parsed;
        let mut c = tokio_postgres::Config::new();
        match host {
            Host::Tcp { host, port } => c.host(host).port(*port),
            Host::Unix { dir, port } => c.host_path(dir).port(*port),
        };
        if let Some(u) = &p.user {
            c.user(u);
        }
        if let Some(pw) = &p.password {
            c.password(pw);
        }
        if let Some(db) = dbname {
            c.dbname(db);
        }
        if let Some(o) = &p.options {
            c.options(o);
        }
        c.application_name(&p.application_name);
        if let Some(t) = p.connect_timeout {
            c.connect_timeout(t);
        }
        c.ssl_mode(match p.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }
}

/// Quotes an SQL identifier: wraps it in double quotes and doubles any inside.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How one attempt ended, short of success.
enum Failure {
    /// Worth retrying; the text says why (for the `db.wait` log line).
    Transient(String),
    /// Not worth retrying.
    Fatal(ConnectError),
}

/// Connects, then asks `SELECT version()`.
async fn connect_and_probe<T>(
    config: tokio_postgres::Config,
    tls: T,
) -> Result<(Client, ServerInfo), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + 'static + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(event = "db.connection_closed", error = %e, "database connection ended");
        }
    });
    // Simple protocol: one round trip (an extended-protocol query would prepare first).
    let version = client
        .simple_query("SELECT version()")
        .await?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    let flavour = Flavour::from_version(&version);
    Ok((client, ServerInfo { flavour, version }))
}

/// Asks the server to cancel whatever the connection behind `token` is running (used when a
/// SIGTERM's grace budget is spent, so an abandoned migration rolls back now instead of running
/// on the server, holding its locks, until it notices its client is gone). Same TLS settings
/// as the connection itself.
pub async fn cancel(
    url: &DbUrl,
    token: &tokio_postgres::CancelToken,
) -> Result<(), tokio_postgres::Error> {
    match &url.tls {
        None => token.cancel_query(NoTls).await,
        Some(config) => token.cancel_query(tls::TrackedTls::new(config).0).await,
    }
}

/// One connection to one host and database, bounded by `budget`.
async fn connect_host(
    url: &DbUrl,
    host: &Host,
    dbname: Option<&str>,
    budget: Option<Duration>,
) -> Result<(Client, ServerInfo), Failure> {
    let config = url.pg_config(host, dbname);
    let mut tls_started = None;
    let fut = async {
        match &url.tls {
            None => connect_and_probe(config, NoTls).await,
            Some(tls_config) => {
                let (tls, started) = tls::TrackedTls::new(tls_config);
                tls_started = Some(started);
                connect_and_probe(config, tls).await
            }
        }
    };
    // tokio-postgres's connect_timeout covers only the TCP connect; a listener that accepts
    // and never speaks would hang the startup exchange, so the whole attempt is bounded.
    let result = match budget {
        Some(b) => match tokio::time::timeout(b, fut).await {
            Ok(r) => r,
            Err(_) => {
                return Err(Failure::Transient(format!(
                    "{host}: no answer within {}s",
                    b.as_secs_f32()
                )));
            }
        },
        None => fut.await,
    };
    let err = match result {
        Ok(ok) => return Ok(ok),
        Err(e) => e,
    };
    let started = tls_started.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
    let facts = classify::facts(&err, url.parsed.sslmode.requires_tls(), started);
    let text = url.scrub(format!("{host}: {}", error_text(&err)));
    Err(match classify::classify(&facts) {
        Verdict::Transient => Failure::Transient(text),
        Verdict::Auth => Failure::Fatal(ConnectError::Auth(text)),
        Verdict::Tls => Failure::Fatal(ConnectError::Tls(text)),
        Verdict::NoDatabase => Failure::Fatal(ConnectError::NoDatabase(
            dbname.unwrap_or_default().to_string(),
        )),
        Verdict::BadParameter => Failure::Fatal(ConnectError::Config {
            param: "options".into(),
            message: format!("the server rejected a startup parameter: {text}"),
        }),
    })
}

/// The error with its causes, the server's detail and hint included.
fn error_text(err: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    if let Some(db) = err.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(": ");
            s.push_str(&c_text);
        }
        cause = c.source();
    }
    s
}

/// Creates the URL's database through the server's default database, on `host`.
async fn create_database(
    url: &DbUrl,
    host: &Host,
    name: &str,
    budget: Option<Duration>,
) -> Result<(), Failure> {
    // The 3D000 does not say which server this is: try CockroachDB's default database first,
    // then PostgreSQL's.
    let mut admin = None;
    for db in [
        Flavour::CockroachDB.default_database(),
        Flavour::PostgreSQL.default_database(),
    ] {
        match connect_host(url, host, Some(db), budget).await {
            Ok(c) => {
                admin = Some(c);
                break;
            }
            Err(Failure::Fatal(ConnectError::NoDatabase(_))) => continue,
            Err(other) => return Err(other),
        }
    }
    let Some((client, info)) = admin else {
        return Err(Failure::Fatal(ConnectError::Config {
            param: "dbname".into(),
            message: format!(
                "database {name:?} does not exist, and neither defaultdb nor postgres is there \
                 to create it from"
            ),
        }));
    };
    let quoted = quote_ident(name);
    let result = match info.flavour {
        Flavour::CockroachDB => {
            client
                .batch_execute(&format!("CREATE DATABASE IF NOT EXISTS {quoted}"))
                .await
        }
        // PostgreSQL has no CREATE DATABASE IF NOT EXISTS; a concurrent creator shows up as
        // 42P04 (or 23505 on pg_database), which is success for us.
        Flavour::PostgreSQL => {
            match client
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
            {
                Ok(Some(_)) => Ok(()),
                Ok(None) => {
                    client
                        .batch_execute(&format!("CREATE DATABASE {quoted}"))
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => {}
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
        Err(e) => {
            let text = url.scrub(format!(
                "{host}: creating database {quoted}: {}",
                error_text(&e)
            ));
            return Err(match e.code().map(|c| c.code()) {
                // No privilege to create databases: the credentials are wrong for this job.
                Some("42501") => Failure::Fatal(ConnectError::Auth(text)),
                // The server went away, is shutting down or is full, or a concurrent creator
                // made CockroachDB restart us (40001): wait and retry.
                Some(c)
                    if c.starts_with("08")
                        || c.starts_with("57")
                        || c == "53300"
                        || c == "40001" =>
                {
                    Failure::Transient(text)
                }
                // Any other refusal (a bad name, ...) will not change by waiting.
                Some(_) => Failure::Fatal(ConnectError::Config {
                    param: "dbname".into(),
                    message: text,
                }),
                // No SQLSTATE: the connection broke under us.
                None => Failure::Transient(text),
            });
        }
    }
    tracing::info!(event = "db.created", database = %name, flavour = ?info.flavour, "database created (or already there)");
    Ok(())
}

/// One attempt: every host in turn, the first that answers wins.
async fn attempt(
    url: &DbUrl,
    budget: Option<Duration>,
    create: bool,
) -> Result<(Client, ServerInfo), Failure> {
    let mut reasons = Vec::new();
    for host in &url.parsed.hosts {
        match connect_host(url, host, url.dbname(), budget).await {
            Ok(ok) => return Ok(ok),
            Err(Failure::Fatal(ConnectError::NoDatabase(name))) if create => {
                create_database(url, host, &name, budget).await?;
                return connect_host(url, host, url.dbname(), budget).await;
            }
            // Permanent failures (auth, TLS, missing database) are the cluster's answer, not
            // one node's mood: the next host would say the same.
            Err(Failure::Fatal(e)) => return Err(Failure::Fatal(e)),
            Err(Failure::Transient(r)) => reasons.push(r),
        }
    }
    Err(Failure::Transient(reasons.join("; ")))
}

/// The backoff between attempts: exponential from about 500 ms, doubled each time, with
/// jitter, capped at 10 s.
pub fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Waits until the server accepts us and answers `SELECT version()`, retrying transient
/// failures with backoff for up to `wait_timeout`. With `create_database`, a missing database
/// is created first (`CREATE DATABASE IF NOT EXISTS` through the server's default database).
///
/// Each attempt tries every host in the URL in turn, and is bounded by `connect_timeout`
/// (and by what remains of `wait_timeout`, though never less than one second).
pub async fn wait_and_connect(
    url: &DbUrl,
    wait_timeout: Duration,
    create_database: bool,
) -> Result<(Client, ServerInfo), ConnectError> {
    let start = Instant::now();
    let deadline = start + wait_timeout;
    let mut delays = backoff();
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let floor = remaining.max(Duration::from_secs(1));
        let budget = Some(url.connect_timeout().map_or(floor, |t| t.min(floor)));
        match attempt(url, budget, create_database).await {
            Ok((client, info)) => {
                tracing::info!(
                    event = "db.ready",
                    flavour = ?info.flavour,
                    version = %info.version,
                    attempts,
                    "database ready"
                );
                return Ok((client, info));
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(reason)) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(ConnectError::Unreachable {
                        attempts,
                        waited: now - start,
                        last: reason,
                    });
                }
                let delay = delays
                    .next()
                    .unwrap_or(Duration::from_secs(10))
                    .min(deadline - now);
                tracing::warn!(
                    event = "db.wait",
                    attempt = attempts,
                    delay_ms = delay.as_millis() as u64,
                    reason = %reason,
                    "waiting for the database"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("we\"ird db"), "\"we\"\"ird db\"");
    }

    #[test]
    fn flavour_from_version() {
        assert_eq!(
            Flavour::from_version("CockroachDB CCL v24.3.1 (x86_64-pc-linux-gnu, ...)"),
            Flavour::CockroachDB
        );
        assert_eq!(
            Flavour::from_version("PostgreSQL 15.8 on x86_64-pc-linux-gnu"),
            Flavour::PostgreSQL
        );
    }

    #[test]
    fn password_absent_from_debug_and_errors() {
        let u = DbUrl::parse("postgresql://app:Sup3rS3cret@h1,h2:5432/db?sslmode=disable").unwrap();
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("Sup3rS3cret"), "{dbg}");
        assert!(dbg.contains(":***@"), "{dbg}");
        assert!(!u.redacted().contains("Sup3rS3cret"));
        assert_eq!(u.scrub("x Sup3rS3cret y".into()), "x *** y");
        for bad in [
            "postgresql://app:Sup3rS3cret@h/db?sslmode=bogus",
            "postgresql://app:Sup3rS3cret@h/db?password=Sup3rS3cret",
            "postgresql://app:Sup3rS3cret@h:99999/db",
            "postgresql://app:Sup3rS3cret@h/db?sslrootcert=/nope",
            "mysql://app:Sup3rS3cret@h/db",
        ] {
            let e = DbUrl::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("Sup3rS3cret"), "{e}");
            assert!(!format!("{e:?}").contains("Sup3rS3cret"), "{e:?}");
            assert_eq!(e.exit(), Exit::BadInput);
        }
    }

    #[test]
    fn accessors() {
        let u = DbUrl::parse("postgres://u@[::1]/d?connect_timeout=0&application_name=x").unwrap();
        assert_eq!(u.user(), Some("u"));
        assert_eq!(u.dbname(), Some("d"));
        assert_eq!(u.application_name(), "x");
        assert_eq!(u.connect_timeout(), None);
        assert_eq!(u.ssl_mode(), SslMode::Prefer);
        assert_eq!(u.hosts().len(), 1);
    }

    #[test]
    fn backoff_starts_near_half_a_second_and_caps_near_ten() {
        let d: Vec<Duration> = backoff().take(12).collect();
        assert!(
            d[0] >= Duration::from_millis(500) && d[0] < Duration::from_millis(1001),
            "{d:?}"
        );
        assert!(d.iter().all(|x| *x <= Duration::from_secs(20)), "{d:?}");
        assert!(d[11] >= Duration::from_secs(10), "{d:?}");
    }

    #[test]
    fn exit_mapping() {
        assert_eq!(ConnectError::Auth("x".into()).exit().code(), 21);
        assert_eq!(ConnectError::Tls("x".into()).exit().code(), 21);
        assert_eq!(ConnectError::NoDatabase("x".into()).exit().code(), 20);
        let u = ConnectError::Unreachable {
            attempts: 1,
            waited: Duration::ZERO,
            last: String::new(),
        };
        assert_eq!(u.exit().code(), 10);
    }

    /// Collects what the JSON subscriber writes, for assertions on log lines.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_quickly() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let u = DbUrl::parse(&format!(
            "postgres://u:Pw0rdXyz@127.0.0.1:{port}/d?sslmode=disable"
        ))
        .unwrap();
        let t = Instant::now();
        let e = wait_and_connect(&u, Duration::from_millis(1500), false)
            .await
            .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
        let attempts = match e {
            ConnectError::Unreachable { attempts, .. } => attempts,
            e => panic!("{e:?}"),
        };
        assert!(attempts >= 2);
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!logs.contains("Pw0rdXyz"), "{logs}");
        let waits: Vec<serde_json::Value> = logs
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &serde_json::Value| v["fields"]["event"] == "db.wait")
            .collect();
        assert_eq!(waits.len() as u32, attempts - 1, "{logs}");
        let first = &waits[0]["fields"];
        assert_eq!(first["attempt"], 1);
        assert!(first["delay_ms"].as_u64().unwrap() >= 500, "{first}");
        assert!(
            first["reason"].as_str().unwrap().contains("refused"),
            "{first}"
        );
    }
}

//! Connecting: the DATABASE_URL, TLS, waiting for the server with backoff, and telling
//! transient failures (retry) from permanent ones (stop).
//!
//! - `url.rs` parses DATABASE_URL (libpq's keys, host lists, IPv6, percent-encoding);
//! - `tls.rs` builds the rustls configuration for the sslmode and loads the PEM files;
//! - `attempt.rs` makes one attempt over the URL's hosts (and creates the database when asked);
//! - `wait.rs` retries attempts with backoff: [`wait_and_connect`];
//! - transient vs permanent is decided by `sqlstate::classify`.
//!
//! The password lives only inside [`DbUrl`]; `Debug`, errors and log lines see
//! [`DbUrl::redacted`], and every failure text is scrubbed of the password before it leaves.

mod attempt;
mod reuse;
mod tls;
mod url;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::NoTls;

pub use url::{Host, SslMode};
pub use wait::wait_and_connect;
pub(crate) use wait::wait_and_connect_side;

use crate::error::Error;

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

impl DbUrl {
    /// The configured DATABASE_URL, parsed: an error naming DATABASE_URL when it is unset.
    pub fn from_setting(url: Option<&str>) -> Result<DbUrl, Error> {
        match url {
            None => Err(Error::Config {
                name: "DATABASE_URL".into(),
                message: "not set; give postgresql://user@host:26257/db?sslmode=verify-full (or --database-url)".into(),
            }),
            Some(url) => DbUrl::parse(url),
        }
    }

    /// Parses a DATABASE_URL and loads the certificate and key files it names.
    pub fn parse(url: &str) -> Result<DbUrl, Error> {
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
        keepalive(&mut c);
        c.ssl_mode(match p.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }
}

/// TCP keepalive: first probe after this much silence. A COMMIT can wait minutes on
/// CockroachDB for a schema change's backfill without a byte on the wire; a cloud load
/// balancer drops a connection idle for about 350 s (AWS NLB; Azure's default is 240 s), and
/// the kernel's default (2 hours) would notice neither that drop nor a dead peer while we hold
/// the lease. Probes every 15 s keep such a connection busy for the balancer.
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// TCP keepalive: time between unanswered probes.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// TCP keepalive: unanswered probes before the connection counts as dead. With the idle time
/// and the interval: a silent peer is noticed within 30 s, the default lease TTL, so a dead
/// migration connection is seen (and the run reconnects) about when a peer would take over.
pub(crate) const KEEPALIVE_RETRIES: u32 = 3;

/// Sets the TCP keepalive of every connection we open ([`KEEPALIVE_IDLE`]).
fn keepalive(c: &mut tokio_postgres::Config) {
    c.keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

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
            assert_eq!(e.exit(), crate::Exit::BadInput);
        }
    }

    #[test]
    fn keepalive_notices_a_dead_peer_within_the_default_lease_ttl() {
        let u = DbUrl::parse("postgres://u@h/d").unwrap();
        let c = u.pg_config(&u.hosts()[0], Some("d"));
        assert!(c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(c.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(c.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        let silent = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES;
        assert!(silent <= Duration::from_secs(30), "{silent:?}");
        // Well under every cloud load balancer's idle timeout (Azure: 240 s).
        assert!(KEEPALIVE_IDLE < Duration::from_secs(60));
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
        // Bound but never listening: a connection is refused, and no other test can take the
        // port meanwhile (a port only looked up and let go was taken by another test's
        // listener once, and the connection was reset instead of refused).
        let reserved = tokio::net::TcpSocket::new_v4().unwrap();
        reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = reserved.local_addr().unwrap().port();
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
            Error::Unreachable { attempts, .. } => attempts,
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

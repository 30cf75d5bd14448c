//! One connection attempt: every host of the URL in turn, each bounded in time, its failure
//! classified (`sqlstate::classify`) as worth waiting out or not; and creating the URL's
//! database when asked to.

use std::time::Duration;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, Socket};

use super::{DbUrl, Flavour, Host, ServerInfo, tls};
use crate::error::Error;
use crate::log::events;
use crate::sqlstate::{self, CreateDatabase, Verdict};
use crate::store::quote_ident;

/// How one attempt ended, short of success.
pub(super) enum Failure {
    /// Worth retrying; the text says why (for the `db.wait` log line).
    Transient(String),
    /// Not worth retrying.
    Fatal(Error),
}

/// The probe every migration connection sends first: the server's `version()` (which tells
/// the flavour), and whether the session's database exists. PostgreSQL refuses a login to a
/// missing database (3D000), but CockroachDB accepts it ("should not cause a login-preventing
/// error", `pkg/sql/sessioninit/cache.go`; cockroachdb/cockroach#71495, #109992), so the
/// check rides along in the same round trip. `pg_catalog.pg_database` lists every database on
/// both servers; an empty `current_database()` (no database in the URL on CockroachDB) is not
/// a missing one.
pub(super) const PROBE_SQL: &str = "SELECT version(), current_database() = '' OR EXISTS \
     (SELECT 1 FROM pg_catalog.pg_database WHERE datname = current_database())";

/// What the probe found: the server, and `false` when the session's database is missing.
type Probed = (Client, ServerInfo, bool);

/// Connects, then sends [`PROBE_SQL`] (unless `probe` is false: a side connection).
async fn connect_and_probe<T>(
    config: tokio_postgres::Config,
    tls: T,
    probe: bool,
) -> Result<Probed, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + 'static + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, connection) = config.connect(tls).await?;
    // In the caller's span: a fleet's target is named on this event too.
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        if let Err(e) = connection.await {
            tracing::debug!(event = events::DB_CONNECTION_CLOSED, error = %e, "database connection ended");
        }
    }));
    if !probe {
        // A side connection (the lease's): the migration connection asked the version already.
        let unprobed = ServerInfo {
            flavour: Flavour::PostgreSQL,
            version: String::new(),
        };
        return Ok((client, unprobed, true));
    }
    // Simple protocol: one round trip (an extended-protocol query would prepare first).
    let (version, exists) = client
        .simple_query(PROBE_SQL)
        .await?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                r.get(0).unwrap_or_default().to_string(),
                r.get(1) != Some("f"),
            )),
            _ => None,
        })
        .unwrap_or((String::new(), true));
    let flavour = Flavour::from_version(&version);
    Ok((client, ServerInfo { flavour, version }, exists))
}

/// One connection to one host and database, bounded by `budget`.
async fn connect_host(
    probe: bool,
    url: &DbUrl,
    host: &Host,
    dbname: Option<&str>,
    budget: Option<Duration>,
) -> Result<(Client, ServerInfo), Failure> {
    let config = url.pg_config(host, dbname);
    let mut tls_started = None;
    let fut = async {
        match &url.tls {
            None => connect_and_probe(config, NoTls, probe).await,
            Some(tls_config) => {
                let (tls, started) = tls::TrackedTls::new(tls_config);
                tls_started = Some(started);
                connect_and_probe(config, tls, probe).await
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
        Ok((_, _, false)) => {
            return Err(Failure::Fatal(Error::NoDatabase(
                dbname.unwrap_or_default().to_string(),
            )));
        }
        Ok((client, info, true)) => return Ok((client, info)),
        Err(e) => e,
    };
    let started = tls_started.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
    let facts = sqlstate::facts(&err, url.parsed.sslmode.requires_tls(), started);
    let text = url.scrub(format!("{host}: {}", error_text(&err)));
    Err(match sqlstate::classify(&facts) {
        Verdict::Transient => Failure::Transient(text),
        Verdict::Auth => Failure::Fatal(Error::Auth(text)),
        Verdict::Tls => Failure::Fatal(Error::Tls(text)),
        Verdict::NoDatabase => {
            Failure::Fatal(Error::NoDatabase(dbname.unwrap_or_default().to_string()))
        }
        Verdict::BadParameter => Failure::Fatal(Error::Url {
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
        match connect_host(true, url, host, Some(db), budget).await {
            Ok(c) => {
                admin = Some(c);
                break;
            }
            Err(Failure::Fatal(Error::NoDatabase(_))) => continue,
            Err(other) => return Err(other),
        }
    }
    let Some((client, info)) = admin else {
        return Err(Failure::Fatal(Error::Url {
            param: "dbname".into(),
            message: format!(
                "database {name:?} does not exist, and neither defaultdb nor postgres is there \
                 to create it from"
            ),
        }));
    };
    let quoted = quote_ident(name);
    // A concurrent creator is success (`sqlstate::create_database`: Exists), or on CockroachDB
    // possibly a 40001 (Transient: the wait loop connects again and finds the database).
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
    if let Err(e) = result {
        let text = url.scrub(format!(
            "{host}: creating database {quoted}: {}",
            error_text(&e)
        ));
        match sqlstate::create_database(sqlstate::code(&e)) {
            CreateDatabase::Exists => {}
            CreateDatabase::Denied => return Err(Failure::Fatal(Error::Auth(text))),
            CreateDatabase::Transient => return Err(Failure::Transient(text)),
            CreateDatabase::Refused => {
                return Err(Failure::Fatal(Error::Url {
                    param: "dbname".into(),
                    message: text,
                }));
            }
        }
    }
    tracing::info!(event = events::DB_CREATED, database = %name, flavour = ?info.flavour, "database created (or already there)");
    Ok(())
}

/// One attempt: every host in turn, the first that answers wins.
pub(super) async fn attempt(
    probe: bool,
    url: &DbUrl,
    budget: Option<Duration>,
    create: bool,
) -> Result<(Client, ServerInfo), Failure> {
    let mut reasons = Vec::new();
    for host in &url.parsed.hosts {
        match connect_host(probe, url, host, url.dbname(), budget).await {
            Ok(ok) => return Ok(ok),
            Err(Failure::Fatal(Error::NoDatabase(name))) if create => {
                create_database(url, host, &name, budget).await?;
                return connect_host(probe, url, host, url.dbname(), budget).await;
            }
            // Permanent failures (auth, TLS, missing database) are the cluster's answer, not
            // one node's mood: the next host would say the same.
            Err(Failure::Fatal(e)) => return Err(Failure::Fatal(e)),
            Err(Failure::Transient(r)) => reasons.push(r),
        }
    }
    Err(Failure::Transient(reasons.join("; ")))
}

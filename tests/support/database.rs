//! Per-test databases on the shared server ([`fresh_db`]), `psql` for setup and inspection,
//! SQL quoting, and the small queries many tests ask ([`table_exists`], [`count`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::postgres::pg_bindir;
use super::server::server;
use super::{is_executable, which};

/// A database of its own for one test, on the shared server.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Database name (unique in this server).
    pub name: String,
    /// `postgresql://user@127.0.0.1:port/name?sslmode=disable`.
    pub url: String,
}

/// Creates a new database named from `tag`, a per-process counter and the pid.
/// Databases are not dropped: the whole server is thrown away at exit.
pub fn fresh_db(tag: &str) -> TestDb {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut clean = clean_tag(tag, 40); // identifiers are limited to 63 bytes
    if !clean.starts_with(|c: char| c.is_ascii_lowercase()) {
        clean.insert(0, 't');
    }
    let name = format!("{clean}_{n}_{}", std::process::id());
    let s = server();
    psql(&s.maintenance_url(), &format!("CREATE DATABASE {name}"));
    TestDb {
        url: s.admin_url(&name),
        name,
    }
}

/// `tag` made fit for a database name: its first `max` characters, lowercase ASCII letters and
/// digits kept, anything else `_`.
pub fn clean_tag(tag: &str, max: usize) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// The `psql` to use: the one next to the server binaries, else the one on `PATH`.
fn psql_bin() -> &'static Path {
    static PSQL: OnceLock<PathBuf> = OnceLock::new();
    PSQL.get_or_init(|| {
        pg_bindir()
            .map(|d| d.join("psql"))
            .filter(|p| is_executable(p))
            .or_else(|| which("psql"))
            .unwrap_or_else(|| PathBuf::from("/usr/bin/psql"))
    })
}

// ---------------------------------------------------------------------------------------------
// psql
// ---------------------------------------------------------------------------------------------

/// Runs `sql` (one or more statements, or a psql script) with
/// `psql -X -q -At -v ON_ERROR_STOP=1 -f -`; panics with psql's stderr on failure.
/// Returns stdout, trimmed (`-At`: unaligned, tuples only, `|` between columns).
pub fn psql(url: &str, sql: &str) -> String {
    try_psql(url, sql).unwrap_or_else(|e| panic!("psql failed: {e}\nSQL:\n{sql}"))
}

/// Like [`psql`] but returns psql's stderr (and exit status) instead of panicking.
pub fn try_psql(url: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(psql_bin());
    cmd.args([
        "-X",
        "-q",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-f",
        "-",
        "-d",
        url,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Ambient libpq settings would change what the URL means; drop them for the child only.
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGSSLMODE",
        "PGOPTIONS",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGTZ",
        "PGCLIENTENCODING",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PGCONNECT_TIMEOUT", "10");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", psql_bin()));
    // Write from a thread: a big script must not deadlock against a full stdout pipe.
    let mut stdin = child.stdin.take().expect("psql stdin");
    let script = sql.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for psql");
    let _ = writer.join();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ))
    }
}

/// `"ident"` with inner quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'literal'` with inner quotes doubled (standard_conforming_strings is on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether a table (or view) named `name` exists in `db`, in any schema.
pub fn table_exists(db: &TestDb, name: &str) -> bool {
    psql(
        &db.url,
        &format!(
            "SELECT count(*) > 0 FROM information_schema.tables WHERE table_name = {}",
            quote_literal(name)
        ),
    ) == "t"
}

/// Whether table `table` in `db` has a column named `column`.
pub fn column_exists(db: &TestDb, table: &str, column: &str) -> bool {
    psql(
        &db.url,
        &format!(
            "SELECT count(*) > 0 FROM information_schema.columns WHERE table_name = {} AND column_name = {}",
            quote_literal(table),
            quote_literal(column)
        ),
    ) == "t"
}

/// The single integer `sql` returns in `db` (a `count(*)`, say); panics naming the query when
/// the answer is not an integer.
pub fn count(db: &TestDb, sql: &str) -> i64 {
    psql(&db.url, sql)
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Another session, on `url`, with `sql` run in a transaction kept open until
/// [`OpenTx::commit`] (or drop): a row lock or a table lock the test holds.
pub struct OpenTx {
    commit: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OpenTx {
    pub fn begin(url: &str, sql: &str) -> OpenTx {
        let (url, sql) = (url.to_owned(), format!("BEGIN; {sql}"));
        let (commit, committed) = tokio::sync::oneshot::channel::<()>();
        let (ran_tx, ran) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    Ok((client, conn)) => {
                        tokio::spawn(conn);
                        client
                    }
                    Err(e) => return drop(ran_tx.send(Err(e.to_string()))),
                };
                let r = client.batch_execute(&sql).await.map_err(|e| e.to_string());
                let ok = r.is_ok();
                let _ = ran_tx.send(r);
                if ok {
                    let _ = committed.await;
                    let _ = client.batch_execute("COMMIT").await;
                }
            });
        });
        ran.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the open transaction answers")
            .expect("the open transaction's statement runs");
        OpenTx {
            commit: Some(commit),
            thread: Some(thread),
        }
    }

    pub fn commit(&mut self) {
        if let Some(tx) = self.commit.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OpenTx {
    fn drop(&mut self) {
        self.commit();
    }
}

//! Integration-test harness: a real database server per test binary, one fresh database per
//! test, `psql` for setup and inspection, and a runner for the `crdb-migrate` binary.
//!
//! Include it from a test file with `mod support;`. The shared server is started lazily by the
//! first call to [`server()`] and shared by every test in that binary; tests stay parallel
//! because each one works in its own database ([`fresh_db`]).
//!
//! Which server: a throwaway CockroachDB (`cockroach start-single-node --insecure`) when a
//! `cockroach` binary is on `PATH`, otherwise a throwaway PostgreSQL (found through
//! `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`).
//! `CRDB_MIGRATE_TEST_FLAVOUR=postgres|cockroach` forces one (read, never set).
//!
//! Lifetime: statics are never dropped, so each server runs under a tiny `sh` supervisor whose
//! stdin is a pipe held by this process. When the test process exits (normally, by panic, or
//! killed) the pipe closes, `read` returns, the supervisor stops the server and removes its
//! temporary directory. The supervisor runs in its own process group so a terminal Ctrl-C
//! reaches only the test process, and shutdown still goes through the pipe.
//!
//! PostgreSQL refuses to run as root; when this process is root, `initdb` and `postgres` run as
//! the `postgres` user through `setpriv` (which execs, so the supervisor signals `postgres`
//! itself, unlike `runuser`, which would stay in between as a parent).
//!
//! No fixed sleeps: every wait polls a condition against a deadline ([`wait_until`]).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a server gets to become ready before the test panics with its log.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Default limit for one run of the binary under test ([`run`]); a hang fails, it does not block.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// Poll interval of every wait in this module.
const POLL: Duration = Duration::from_millis(20);
/// Attempts to start a server when the port picked by [`free_port`] was taken meanwhile.
const START_ATTEMPTS: u32 = 3;
/// Name of the unprivileged account PostgreSQL runs as when we are root.
const PG_OS_USER: &str = "postgres";
/// Superuser created by `initdb -U`, the same whether or not we are root.
const PG_SUPERUSER: &str = "postgres";

/// Settings for speed (durability is pointless for a throwaway cluster) and for the
/// concurrency tests (20 migrator processes, each with a few connections, plus psql).
const PG_BASE_CONF: &[&str] = &[
    "listen_addresses = '127.0.0.1'",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_connections = 200",
    "shared_buffers = 16MB",
    "TimeZone = 'UTC'",
    "logging_collector = off",
];

// ---------------------------------------------------------------------------------------------
// Server discovery
// ---------------------------------------------------------------------------------------------

/// Which kind of server the tests are talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// A throwaway PostgreSQL cluster (the default).
    Postgres,
    /// A throwaway single-node CockroachDB (when `cockroach` is on `PATH`).
    Cockroach,
}

/// True when this process runs as root (then PostgreSQL must run as another user).
/// Asked of `id -u` rather than `geteuid()`, to keep `libc` out of the dev-dependencies.
pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        let out = Command::new("id")
            .arg("-u")
            .output()
            .expect("run `id -u` to learn whether tests run as root");
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

/// Finds an executable named `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directory holding `initdb` and `postgres`, or `None` when PostgreSQL is not installed.
pub fn pg_bindir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let has_server =
            |d: &Path| is_executable(&d.join("postgres")) && is_executable(&d.join("initdb"));
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && has_server(&dir) {
                return Some(dir);
            }
        }
        // Debian/Ubuntu layout: /usr/lib/postgresql/<major>/bin; pick the newest major.
        let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                has_server(&bin).then_some((major, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    })
    .as_deref()
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

fn detect_flavour() -> Flavour {
    match std::env::var("CRDB_MIGRATE_TEST_FLAVOUR").as_deref() {
        Ok("postgres") => return Flavour::Postgres,
        Ok("cockroach") => return Flavour::Cockroach,
        Ok(other) if !other.is_empty() => {
            panic!("CRDB_MIGRATE_TEST_FLAVOUR={other:?}: expected `postgres` or `cockroach`")
        }
        _ => {}
    }
    if which("cockroach").is_some() {
        Flavour::Cockroach
    } else {
        Flavour::Postgres
    }
}

// ---------------------------------------------------------------------------------------------
// Supervised process (shared by the shared server and custom servers)
// ---------------------------------------------------------------------------------------------

/// A server process under the `sh` supervisor described in the module docs.
struct Supervised {
    child: Child,
    /// Write end of the supervisor's stdin: closing it (drop, or process exit) stops the server.
    stdin: Option<ChildStdin>,
    /// The temporary directory (removed by the supervisor once the server has stopped).
    dir: PathBuf,
    /// The server's stdout and stderr, opened for reading before the start: still readable
    /// after the supervisor has removed the directory (a server that died at start).
    log: fs::File,
}

/// The supervisor script. Positional parameters: `$1` the temp dir, `$2` the log file,
/// `$3` the signal that stops the server, then the server command line.
///
/// The main shell waits on the server, so the supervisor exits as soon as the server does
/// (a failed start is noticed at once). A background reader waits for EOF on our pipe and then
/// signals the server. The pipe is duplicated to fd 3 first because POSIX gives background
/// jobs `/dev/null` as stdin; the server itself gets neither.
const SUPERVISOR: &str = r#"dir=$1; log=$2; sig=$3; shift 3
exec 3<&0
"$@" >>"$log" 2>&1 </dev/null 3<&- &
pid=$!
{ read _ <&3; kill -"$sig" "$pid" 2>/dev/null; } &
reader=$!
exec 3<&-
wait "$pid"
kill "$reader" 2>/dev/null
rm -rf "$dir"
"#;

impl Supervised {
    fn spawn(dir: &Path, stop_signal: &str, argv: &[String], envs: &[(&str, &str)]) -> Supervised {
        let log_path = dir.join("server.log");
        let log = fs::File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .expect("create server log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("crdbm-supervisor")
            .arg(dir)
            .arg(&log_path)
            .arg(stop_signal)
            .args(argv)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a terminal Ctrl-C hits the test process only; the server is
            // then stopped through the pipe, which also cleans the temp dir up.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .expect("spawn sh supervisor for the test server");
        let stdin = child.stdin.take();
        Supervised {
            child,
            stdin,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// Whether the supervisor (hence the server) has already exited.
    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        let mut f = &self.log;
        let _ = f.seek(SeekFrom::Start(0));
        if let Err(e) = f.read_to_string(&mut text) {
            return format!("<cannot read server log: {e}>");
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the server and waits until it is gone and its directory removed.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A fresh temporary directory under `/tmp` (whose parents the `postgres` user can traverse),
/// owned by the server's OS user. Kept on disk: the supervisor removes it.
fn server_tempdir(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create temp dir for test server")
        .keep();
    if is_root() {
        chown_to_server(&dir);
    }
    dir
}

fn chown_to_server(path: &Path) {
    let status = Command::new("chown")
        .arg(format!("{PG_OS_USER}:{PG_OS_USER}"))
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown {PG_OS_USER} {path:?} failed");
}

/// Prefix for commands that must not run as root: `setpriv` to the postgres user when root.
fn as_server_user(program: &Path) -> Vec<String> {
    let mut argv = Vec::new();
    if is_root() {
        argv.extend(
            [
                "setpriv",
                "--reuid",
                PG_OS_USER,
                "--regid",
                PG_OS_USER,
                "--init-groups",
                "--",
            ]
            .map(String::from),
        );
    }
    argv.push(program.display().to_string());
    argv
}

fn require_pg_bindir() -> &'static Path {
    pg_bindir().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries found (tried `pg_config --bindir` and \
             /usr/lib/postgresql/*/bin); install postgresql or put `cockroach` on PATH"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL cluster (used by both the shared server and custom servers)
// ---------------------------------------------------------------------------------------------

/// A running PostgreSQL cluster in its own temp dir.
struct PgCluster {
    sup: Supervised,
    port: u16,
    /// Unix socket directory (kept for the harness's own trusted admin access).
    sock: PathBuf,
}

/// Why a start attempt failed.
enum StartError {
    /// The port was taken between [`free_port`] and bind: worth another try.
    PortTaken(String),
    Other(String),
}

impl PgCluster {
    /// initdb + configure + start + wait for readiness, retrying on a port clash.
    fn start(opts: &CustomOpts) -> Result<PgCluster, String> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(opts) {
                Ok(c) => return Ok(c),
                Err(StartError::PortTaken(log)) => last = log,
                Err(StartError::Other(msg)) => return Err(msg),
            }
        }
        Err(format!(
            "port clash on every one of {START_ATTEMPTS} attempts; last log:\n{last}"
        ))
    }

    fn try_start(opts: &CustomOpts) -> Result<PgCluster, StartError> {
        let bindir = require_pg_bindir();
        let dir = server_tempdir("crdbm-pg-");
        let data = dir.join("data");
        let sock = dir.join("sock");

        let mut initdb = as_server_user(&bindir.join("initdb"));
        initdb.extend(
            [
                "-D",
                data.to_str().expect("utf-8 temp path"),
                "-U",
                PG_SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
            .map(String::from),
        );
        let out = Command::new(&initdb[0])
            .args(&initdb[1..])
            .current_dir(&dir)
            .output()
            .expect("run initdb");
        if !out.status.success() {
            let _ = fs::remove_dir_all(&dir);
            return Err(StartError::Other(format!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        // The socket dir is created as root when we are root; hand it over like the rest.
        fs::create_dir(&sock).expect("create socket dir");
        if is_root() {
            chown_to_server(&sock);
        }

        let port = free_port();
        // Appending/overwriting keeps each file's owner (postgres) and mode.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        let mut lines: Vec<String> = PG_BASE_CONF.iter().map(|s| s.to_string()).collect();
        lines.push(format!("port = {port}"));
        lines.push(format!("unix_socket_directories = '{}'", sock.display()));
        lines.extend(opts.conf.iter().cloned()); // later lines win: caller overrides base
        writeln!(conf, "\n# crdb-migrate test harness\n{}", lines.join("\n")).expect("write conf");
        drop(conf);
        if let Some(hba) = &opts.hba {
            // Keep trusted local access for the harness's own admin connection.
            let text = format!("local all {PG_SUPERUSER} trust\n{hba}\n");
            fs::write(data.join("pg_hba.conf"), text).expect("write pg_hba.conf");
        }
        for (name, contents) in &opts.files {
            let path = data.join(name);
            fs::write(&path, contents).expect("write server file");
            give_to_server(&path);
        }

        let mut argv = as_server_user(&bindir.join("postgres"));
        argv.extend(["-D".to_string(), data.display().to_string()]);
        // SIGINT: fast shutdown (disconnect clients, stop); quick with fsync off.
        let sup = Supervised::spawn(&dir, "INT", &argv, &[]);
        let mut cluster = PgCluster { sup, port, sock };
        let url = cluster.socket_url("postgres");
        match wait_ready(&mut cluster.sup, &url) {
            Ok(()) => Ok(cluster),
            Err(log) if is_port_clash(&log) => {
                cluster.sup.stop();
                Err(StartError::PortTaken(log))
            }
            Err(log) => {
                cluster.sup.stop();
                Err(StartError::Other(format!(
                    "PostgreSQL in {dir:?} did not become ready; log tail:\n{log}"
                )))
            }
        }
    }

    /// Superuser URL over the unix socket (trust), for the harness's own use.
    fn socket_url(&self, db: &str) -> String {
        format!(
            "postgresql://{PG_SUPERUSER}@/{db}?host={}&port={}",
            self.sock.display(),
            self.port
        )
    }
}

/// Whether a failed start's log says the port was taken (PostgreSQL: "could not bind ...
/// Address already in use"; CockroachDB: "bind: address already in use").
fn is_port_clash(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// Polls `select 1` through `url` until it works, the server exits, or [`READY_DEADLINE`].
/// On failure returns the server log's tail (plus the last psql error).
fn wait_ready(sup: &mut Supervised, url: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if sup.exited() {
            return Err(format!("server exited early:\n{}", sup.log_tail()));
        }
        let last_err = match try_psql(url, "select 1") {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready after {READY_DEADLINE:?}; last psql error: {last_err}\n{}",
                sup.log_tail()
            ));
        }
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// The shared server
// ---------------------------------------------------------------------------------------------

/// The database server shared by all tests of one test binary (see [`server()`]).
pub struct Server {
    flavour: Flavour,
    port: u16,
    user: &'static str,
    /// The database that always exists (`postgres` / `defaultdb`), used to create others.
    maintenance_db: &'static str,
    /// Time from the first [`server()`] call to readiness.
    startup: Duration,
    /// Keeps the supervisor's stdin open for the life of the process. Never dropped (static).
    /// `None` for an external server (see [`external_cockroach`]).
    _sup: Option<Supervised>,
}

/// The shared server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let t0 = Instant::now();
        let mut s = match (external_cockroach(), detect_flavour()) {
            (Some(s), _) => s,
            (None, Flavour::Postgres) => start_shared_postgres(),
            (None, Flavour::Cockroach) => start_shared_cockroach(),
        };
        s.startup = t0.elapsed();
        eprintln!(
            "test harness: {:?} server on 127.0.0.1:{} ready in {:?}",
            s.flavour, s.port, s.startup
        );
        s
    })
}

/// An already running insecure CockroachDB on 127.0.0.1 (a CI service container started with
/// `start-single-node --insecure`), named by `CRDB_MIGRATE_TEST_COCKROACH_PORT`; waited for
/// up to the readiness deadline. Tests still get a database each, so they stay parallel.
fn external_cockroach() -> Option<Server> {
    let port: u16 = std::env::var("CRDB_MIGRATE_TEST_COCKROACH_PORT")
        .ok()?
        .parse()
        .expect("CRDB_MIGRATE_TEST_COCKROACH_PORT must be a port number");
    let url = format!("postgresql://root@127.0.0.1:{port}/defaultdb?sslmode=disable");
    let deadline = Instant::now() + READY_DEADLINE;
    while let Err(e) = try_psql(&url, "SELECT 1") {
        assert!(
            Instant::now() < deadline,
            "external CockroachDB on port {port} not ready: {e}"
        );
        std::thread::sleep(POLL);
    }
    Some(Server {
        flavour: Flavour::Cockroach,
        port,
        user: "root",
        maintenance_db: "defaultdb",
        startup: Duration::ZERO,
        _sup: None,
    })
}

fn start_shared_postgres() -> Server {
    let c = PgCluster::start(&CustomOpts::default())
        .unwrap_or_else(|e| panic!("cannot start the shared PostgreSQL test server: {e}"));
    Server {
        flavour: Flavour::Postgres,
        port: c.port,
        user: PG_SUPERUSER,
        maintenance_db: "postgres",
        startup: Duration::ZERO,
        _sup: Some(c.sup),
    }
}

fn start_shared_cockroach() -> Server {
    let cockroach = which("cockroach").expect("`cockroach` on PATH");
    let mut last = String::new();
    for _ in 0..START_ATTEMPTS {
        // CockroachDB runs happily as root; no setpriv, no chown.
        let dir = tempfile::Builder::new()
            .prefix("crdbm-crdb-")
            .tempdir_in("/tmp")
            .expect("create temp dir for cockroach")
            .keep();
        let port = free_port();
        let argv: Vec<String> = vec![
            cockroach.display().to_string(),
            "start-single-node".into(),
            "--insecure".into(),
            format!("--listen-addr=127.0.0.1:{port}"),
            "--http-addr=127.0.0.1:0".into(),
            format!("--store={}", dir.join("store").display()),
            "--cache=128MiB".into(),
            "--max-sql-memory=256MiB".into(),
            // Warnings and errors on stderr, i.e. in the log we show on failure: the store
            // (with its own log files) is removed with the temp dir when the server exits.
            "--log=sinks: {stderr: {filter: WARNING}}".into(),
        ];
        // SIGKILL: the store is thrown away, a graceful drain would only cost time.
        let mut sup = Supervised::spawn(
            &dir,
            "KILL",
            &argv,
            &[("COCKROACH_SKIP_ENABLING_DIAGNOSTIC_REPORTING", "true")],
        );
        let url = format!("postgresql://root@127.0.0.1:{port}/defaultdb?sslmode=disable");
        match wait_ready(&mut sup, &url) {
            Ok(()) => {
                return Server {
                    flavour: Flavour::Cockroach,
                    port,
                    user: "root",
                    maintenance_db: "defaultdb",
                    startup: Duration::ZERO,
                    _sup: Some(sup),
                };
            }
            Err(log) if is_port_clash(&log) => {
                sup.stop();
                last = log;
            }
            Err(log) => {
                sup.stop();
                panic!("cockroach in {dir:?} did not become ready:\n{log}");
            }
        }
    }
    panic!("cockroach: port clash on every one of {START_ATTEMPTS} attempts; last log:\n{last}");
}

impl Server {
    /// PostgreSQL or CockroachDB.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name (`postgres` or `root`).
    pub fn user(&self) -> &str {
        self.user
    }

    /// Superuser URL for `db` over TCP, `sslmode=disable` (trust / insecure: no password).
    pub fn admin_url(&self, db: &str) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{}/{db}?sslmode=disable",
            self.user, self.port
        )
    }

    /// Superuser URL for the database that always exists (`postgres` / `defaultdb`).
    pub fn maintenance_url(&self) -> String {
        self.admin_url(self.maintenance_db)
    }

    /// How long the server took to start (first [`server()`] call to ready).
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
}

// ---------------------------------------------------------------------------------------------
// Per-test databases
// ---------------------------------------------------------------------------------------------

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
    let mut clean: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40) // identifiers are limited to 63 bytes
        .collect();
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

// ---------------------------------------------------------------------------------------------
// The binary under test
// ---------------------------------------------------------------------------------------------

/// Path of the `crdb-migrate` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_crdb-migrate");

/// A `Command` for the binary with a clean environment: only `PATH`, `LOG_FORMAT=json` and
/// `MIGRATE_TERMINATION_LOG=/dev/null`. Add what the test needs with `.env(..)`.
pub fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("MIGRATE_TERMINATION_LOG", "/dev/null")
        .stdin(Stdio::null());
    cmd
}

/// What a finished process left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `128 + signal` when killed by a signal.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// Lines of stdout that parse as JSON (log events), in order; other lines are skipped.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    /// The events whose `event` field is `name`.
    pub fn events_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| event_name(e) == Some(name))
            .collect()
    }

    /// Whether an event named `name` was logged.
    pub fn has_event(&self, name: &str) -> bool {
        self.events().iter().any(|e| event_name(e) == Some(name))
    }

    /// Panics, showing both streams, unless the exit code is `code`. Returns self for chaining.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// An event's name: the `event` field, at top level or under `fields` (tracing's JSON layout).
fn event_name(e: &serde_json::Value) -> Option<&str> {
    e.get("event")
        .or_else(|| e.get("fields").and_then(|f| f.get("event")))
        .and_then(|v| v.as_str())
}

/// Runs `cmd` to completion (killing it and panicking after 120 s) and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    run_with_deadline(cmd, RUN_DEADLINE)
}

/// Like [`run`] with an explicit deadline after which the process is killed and the test panics.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_t = drain(Box::new(out));
    let err_t = drain(Box::new(err));
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if t0.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap_or_default();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {deadline:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
        std::thread::sleep(POLL);
    };
    Output {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting and ports
// ---------------------------------------------------------------------------------------------

/// Polls `f` every 20 ms until it returns true; panics naming `what` once `deadline` has passed.
#[track_caller]
pub fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    loop {
        if f() {
            return;
        }
        if t0.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it).
/// Someone else may take it before you bind; server starts here retry on a clash.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Extra PostgreSQL instances with custom settings (TLS tests)
// ---------------------------------------------------------------------------------------------

/// Settings for [`start_custom`].
#[derive(Debug, Clone, Default)]
pub struct CustomOpts {
    /// Lines appended to `postgresql.conf` after the harness's own (so they win), e.g.
    /// `"ssl = on"`, `"ssl_cert_file = 'server.crt'"`. Relative paths are relative to the data
    /// directory, which is where [`CustomOpts::files`] land.
    pub conf: Vec<String>,
    /// Replaces `pg_hba.conf`. The harness keeps `local all postgres trust` as the first line
    /// for its own admin connection ([`CustomServer::admin_url`]); TCP rules are all yours.
    /// `None` keeps initdb's trust-everything file.
    pub hba: Option<String>,
    /// Roles created after start: `(name, password)`, `LOGIN`, password hashed with the
    /// server's `password_encryption` (scram-sha-256 on PostgreSQL 15).
    pub roles: Vec<(String, String)>,
    /// Files written into the data directory before start as `(file name, contents)`, owned by
    /// the server user with mode 0600: the easy way to hand over server certs and keys.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A separate PostgreSQL instance; stopped (and its directory removed) on drop.
pub struct CustomServer {
    cluster: PgCluster,
}

/// Starts an extra PostgreSQL instance configured by `opts`; panics with the log on failure.
/// Always PostgreSQL, even when the shared server is CockroachDB.
pub fn start_custom(opts: CustomOpts) -> CustomServer {
    try_start_custom(opts).unwrap_or_else(|e| panic!("cannot start custom PostgreSQL: {e}"))
}

/// Like [`start_custom`], returning the failure (with the server log's tail) instead.
pub fn try_start_custom(opts: CustomOpts) -> Result<CustomServer, String> {
    let cluster = PgCluster::start(&opts)?;
    let server = CustomServer { cluster };
    for (name, password) in &opts.roles {
        psql(
            &server.admin_url("postgres"),
            &format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                quote_ident(name),
                quote_literal(password)
            ),
        );
    }
    Ok(server)
}

impl CustomServer {
    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.cluster.port
    }

    /// Superuser URL over the unix socket with trust: works whatever `hba` and TLS say.
    /// For psql; the binary under test should use [`CustomServer::url`] (TCP).
    pub fn admin_url(&self, db: &str) -> String {
        self.cluster.socket_url(db)
    }

    /// `postgresql://user[:password]@127.0.0.1:port/db` with no query string: append
    /// `?sslmode=...&sslrootcert=...` as the test needs. User and password are percent-encoded.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) => format!("{}:{}", pct(user), pct(p)),
            None => pct(user),
        };
        format!("postgresql://{auth}@127.0.0.1:{}/{db}", self.cluster.port)
    }

    /// The data directory (where [`CustomOpts::files`] were written).
    pub fn data_dir(&self) -> PathBuf {
        self.cluster.sup.dir.join("data")
    }

    /// The last lines of the server's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        self.cluster.sup.log_tail()
    }
}

impl Drop for CustomServer {
    fn drop(&mut self) {
        self.cluster.sup.stop();
    }
}

/// Makes a file the caller wrote (a cert or key) usable as a server file: owned by the server
/// user when we are root, mode 0600 (PostgreSQL refuses a key readable by others). Its
/// directory must be traversable by that user: anything under `/tmp` made with default modes
/// is, a `tempfile::TempDir` (0700, root's) is not; prefer [`CustomOpts::files`].
pub fn give_to_server(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod 600 {path:?}: {e}"));
    if is_root() {
        chown_to_server(path);
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

/// Percent-encodes everything but unreserved URL characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

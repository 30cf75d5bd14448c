//! PostgreSQL servers: finding the binaries, `initdb` + configure + start under the supervisor
//! (as the `postgres` user through `setpriv` when we are root), the shared PostgreSQL, and
//! extra instances with custom settings ([`start_custom`], for the TLS tests).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::database::{psql, quote_ident, quote_literal};
use super::server::{Flavour, Server};
use super::supervisor::{Supervised, is_port_clash, wait_ready};
use super::{READY_DEADLINE, START_ATTEMPTS, free_port, is_executable};

/// Name of the unprivileged account PostgreSQL runs as when we are root.
const PG_OS_USER: &str = "postgres";
/// Superuser created by `initdb -U`, the same whether or not we are root.
pub(super) const PG_SUPERUSER: &str = "postgres";

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

/// Starts the PostgreSQL behind the shared [`Server`].
pub(super) fn start_shared_postgres() -> Server {
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

    /// Restarts the server as `pg_ctl restart -m immediate` would, and waits until it accepts
    /// connections again (panicking with the log after the readiness deadline): `pg_ctl stop
    /// -m immediate` (run as the server's OS user, like initdb) kills every session without a
    /// checkpoint, then the supervisor starts the same postmaster again on the same port and
    /// data directory, which recovers from its WAL. (`pg_ctl restart` itself would start the
    /// new postmaster outside the supervisor, which would then remove its directory.)
    pub fn restart_immediate(&mut self) {
        let dir = self.cluster.sup.dir.clone();
        let pid_file = self.data_dir().join("postmaster.pid");
        let pid = || {
            fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
        };
        let old = pid();
        fs::write(dir.join(".restart"), b"").expect("write the supervisor's restart marker");
        // `-W`: pg_ctl would wait for postmaster.pid to go, and the supervisor's new
        // postmaster writes it again at once; the wait is on the new pid below instead.
        let mut argv = as_server_user(&require_pg_bindir().join("pg_ctl"));
        argv.extend(
            ["stop", "-m", "immediate", "-W", "-D"]
                .map(String::from)
                .into_iter()
                .chain([self.data_dir().display().to_string()]),
        );
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&dir)
            .output()
            .expect("run pg_ctl stop -m immediate");
        assert!(
            out.status.success(),
            "pg_ctl stop -m immediate failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        super::wait_until(READY_DEADLINE, "a new postmaster after the restart", || {
            pid().is_some_and(|p| Some(&p) != old.as_ref())
        });
        let url = self.admin_url("postgres");
        if let Err(log) = wait_ready(&mut self.cluster.sup, &url) {
            panic!("PostgreSQL in {dir:?} did not come back after the restart:\n{log}");
        }
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

//! The server the tests talk to: which flavour ([`FLAVOUR`], chosen at build time), and the
//! [`Server`] shared by every test of one binary, started lazily by the first call to
//! [`server()`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::cockroach::{external_cockroach, start_shared_cockroach};
use super::postgres::start_shared_postgres;
use super::supervisor::Supervised;

/// Which kind of server the tests are talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// A throwaway PostgreSQL cluster (the default).
    Postgres,
    /// A throwaway single-node CockroachDB (when `cockroach` is on `PATH`).
    Cockroach,
}

/// The server this build's tests run against, decided by the package's build script
/// (`build.rs`, from `CRDB_MIGRATE_TEST_FLAVOUR`, `CRDB_MIGRATE_TEST_COCKROACH_PORT` and
/// `PATH`), which also marks the tests that need the other one as ignored: one decision for
/// both, so a test never runs against a server it was not meant for.
pub const FLAVOUR: Flavour = if cfg!(crdb_test_server = "cockroach") {
    Flavour::Cockroach
} else {
    Flavour::Postgres
};

/// The database server shared by all tests of one test binary (see [`server()`]).
pub struct Server {
    pub(super) flavour: Flavour,
    pub(super) port: u16,
    pub(super) user: &'static str,
    /// The database that always exists (`postgres` / `defaultdb`), used to create others.
    pub(super) maintenance_db: &'static str,
    /// Time from the first [`server()`] call to readiness.
    pub(super) startup: Duration,
    /// Keeps the supervisor's stdin open for the life of the process. Never dropped (static).
    /// `None` for an external server (see [`external_cockroach`]).
    pub(super) _sup: Option<Supervised>,
}

/// The shared server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let t0 = Instant::now();
        let mut s = match FLAVOUR {
            Flavour::Postgres => start_shared_postgres(),
            Flavour::Cockroach => external_cockroach().unwrap_or_else(start_shared_cockroach),
        };
        s.startup = t0.elapsed();
        eprintln!(
            "test harness: {:?} server on 127.0.0.1:{} ready in {:?}",
            s.flavour, s.port, s.startup
        );
        s
    })
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

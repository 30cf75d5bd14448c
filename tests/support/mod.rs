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
//! `CRDB_MIGRATE_TEST_FLAVOUR=postgres|cockroach` forces one, and
//! `CRDB_MIGRATE_TEST_COCKROACH_PORT` names an already running CockroachDB to use instead.
//!
//! Skipping: the package's build script (`build.rs`) makes that choice, once per build, and
//! sets `cfg`s for it (`crdb_test_server`, `crdb_test_bare_root`). A test that does not apply
//! carries `#[cfg_attr(not(crdb_test_server = "postgres"), ignore = "needs PostgreSQL: ...")]`
//! and is counted as ignored, with its reason; no test returns early and passes.
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
//!
//! Files, one concern each (re-exported here, so `support::xyz` works, except the two named as
//! modules):
//! - `server.rs`: [`Flavour`], the shared [`Server`] and [`server()`];
//! - `postgres.rs`: initdb and start of PostgreSQL, [`start_custom`] for extra instances;
//! - `cockroach.rs`: the external or `start-single-node` CockroachDB;
//! - `supervisor.rs`: the `sh` supervisor and the readiness wait;
//! - `database.rs`: [`fresh_db`], [`psql`], quoting and small queries;
//! - `binary.rs`: [`bin()`], [`run`], [`Output`] and its events;
//! - `proxy/`: a fault-injecting PostgreSQL wire-protocol proxy ([`Proxy`]): the API in
//!   `mod.rs`, the tokio pumps in `runtime.rs`, the protocol framing in `framing.rs`;
//! - `tls.rs` (as `support::tls`): certificates made with openssl and a TLS-only PostgreSQL;
//! - `dressed.rs` (as `support::dressed`): PostgreSQL dressed as CockroachDB (`version()`,
//!   `crdb_internal` readable, revoked or absent; in full or `version()` alone) on a server that
//!   logs every statement;
//! - `fixtures.rs` (as `support::fixtures`): the migration sets, commands and small checks
//!   several test files share.
#![allow(dead_code)]

mod binary;
mod cockroach;
mod database;
pub mod dressed;
pub mod fixtures;
mod postgres;
pub mod proxy;
mod server;
mod supervisor;
pub mod tls;

// Each test binary uses a different part of the harness: unused re-exports are expected.
#[allow(unused_imports)]
pub use binary::*;
#[allow(unused_imports)]
pub use database::*;
#[allow(unused_imports)]
pub use postgres::*;
#[allow(unused_imports)]
pub use proxy::*;
#[allow(unused_imports)]
pub use server::*;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a server gets to become ready before the test panics with its log.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Poll interval of every wait in the harness.
const POLL: Duration = Duration::from_millis(20);
/// Attempts to start a server when the port picked by [`free_port`] was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

/// Finds an executable named `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Whether `p` is a file with an execute bit.
fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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

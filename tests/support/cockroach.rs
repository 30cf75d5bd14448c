//! CockroachDB servers: an external one named by `CRDB_MIGRATE_TEST_COCKROACH_PORT` (a CI
//! service container), or a throwaway `cockroach start-single-node --insecure` under the
//! supervisor when `cockroach` is on `PATH`.

use std::time::{Duration, Instant};

use super::database::try_psql;
use super::server::{Flavour, Server};
use super::supervisor::{Supervised, is_port_clash, wait_ready};
use super::{POLL, READY_DEADLINE, START_ATTEMPTS, free_port, which};

/// An already running insecure CockroachDB on 127.0.0.1 (a CI service container started with
/// `start-single-node --insecure`), named by `CRDB_MIGRATE_TEST_COCKROACH_PORT`; waited for
/// up to the readiness deadline. Tests still get a database each, so they stay parallel.
pub(super) fn external_cockroach() -> Option<Server> {
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

/// Starts a throwaway single-node CockroachDB for the shared [`Server`].
pub(super) fn start_shared_cockroach() -> Server {
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

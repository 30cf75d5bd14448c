//! Issue 11 through the real binary: a run that survives a dropped connection. A proxy
//! ([`support::Proxy`]) cuts the migration connection, then the lease connection, at every
//! protocol message of a 20-migration run, in both directions; the test server is restarted
//! in the middle of a 200-migration run; the migration connection stalls past the lease TTL;
//! and a pipelined step refuses to commit once another session took the lease mid-flight.
//!
//! Every migration inserts its version into a side-effect table `effects` in its own
//! transaction, so a double apply shows as two rows and a lost one as none: "exactly once" is
//! read from the database, not from the tool's ledger.
//!
//! Which connection is which: the binary opens the migration connection first and the lease
//! connection after it (`ConnMatch::Nth(1)` and `Nth(2)` on a proxy of the test's own); both
//! send the same `application_name`. [`a_clean_run_through_the_proxy_has_the_measured_shape`]
//! pins that order and the message counts the generated tests cover.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tempfile::TempDir;

/// Migrations in the cut runs.
const N: i64 = 20;
/// Messages of a clean 20-migration run on the migration connection (connection 1),
/// client to server and server to client (see the measuring test).
const MIGRATION_C2S: u64 = 0;
const MIGRATION_S2C: u64 = 0;
/// The same on the lease connection (connection 2).
const LEASE_C2S: u64 = 0;
const LEASE_S2C: u64 = 0;

/// The migration connection's number on a fresh proxy.
const MIGRATION_CONN: u64 = 1;
/// The lease connection's number on a fresh proxy.
const LEASE_CONN: u64 = 2;

/// The body of migration `v`: a table of its own and its side-effect row, then `extra`.
fn body(v: i64, extra: &str) -> String {
    format!(
        "CREATE TABLE t_{v} (id INT);\nINSERT INTO effects (version) VALUES ({v});\n{extra}\n\
         -- @UNDO\nDROP TABLE t_{v};\nDELETE FROM effects WHERE version = {v};\n"
    )
}

/// A migrations directory with versions `1..=n`; `extra(v)` is appended to each body.
fn migrations(n: i64, extra: impl Fn(i64) -> String) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        fs::write(
            dir.path().join(format!("{v}_m{v}.sql")),
            body(v, &extra(v)),
        )
        .expect("write migration");
    }
    dir
}

/// The side-effect table every migration writes to, in `url`'s database.
fn create_effects(url: &str) {
    psql(url, "CREATE TABLE effects (version INT8 NOT NULL)");
}

/// A fresh database holding the side-effect table.
fn db_with_effects(tag: &str) -> TestDb {
    let db = fresh_db(tag);
    create_effects(&db.url);
    db
}

/// The binary against `url` with `dir`, a holder name and a wait timeout long enough for a
/// reconnect.
fn cmd(url: &str, dir: &Path) -> Command {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_HOLDER", "netfault")
        .env("MIGRATE_WAIT_TIMEOUT", "30s");
    c
}

/// `applied|dirty|effect rows|distinct effect versions` in `url`'s database.
fn outcome(url: &str) -> String {
    psql(
        url,
        "SELECT (SELECT count(*) FROM _migrations WHERE status = 'applied') || '|' || \
                (SELECT count(*) FROM _migrations WHERE status = 'dirty') || '|' || \
                (SELECT count(*) FROM effects) || '|' || \
                (SELECT count(DISTINCT version) FROM effects)",
    )
}

/// Versions whose side effect and ledger row disagree, or whose side effect appears twice.
fn inconsistencies(url: &str) -> String {
    psql(
        url,
        "SELECT coalesce(string_agg(format('%s:%s/%s', v, e, l), ',' ORDER BY v), '') FROM (
           SELECT coalesce(e.version, l.version) AS v, coalesce(e.n, 0) AS e, coalesce(l.n, 0) AS l
           FROM (SELECT version, count(*) AS n FROM effects GROUP BY version) e
           FULL JOIN (SELECT version, count(*) AS n FROM _migrations GROUP BY version) l
             ON e.version = l.version) x
         WHERE e <> l OR e > 1",
    )
}

/// Whether the lease row says nobody holds the lease.
fn lease_free(url: &str) -> bool {
    psql(
        url,
        "SELECT count(*) FROM _migrations_lease WHERE holder IS NULL",
    ) == "1"
}

/// Asserts the run `out` finished with every one of `n` migrations applied exactly once,
/// nothing dirty and the lease released; `what` names the case.
#[track_caller]
fn assert_exactly_once(url: &str, n: i64, out: &Output, what: &str) {
    assert_eq!(
        out.code, 0,
        "{what}: expected exit 0\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(
        outcome(url),
        format!("{n}|0|{n}|{n}"),
        "{what}: applied|dirty|effects|distinct\n--- stdout ---\n{}",
        out.stdout
    );
    assert_eq!(inconsistencies(url), "", "{what}");
    assert!(
        lease_free(url),
        "{what}: the finished run left its lease held\n--- stdout ---\n{}",
        out.stdout
    );
}

/// Checks the fields of every `db.reconnected` event of `out`.
#[track_caller]
fn assert_reconnect_events_are_complete(out: &Output, what: &str) {
    for e in out.events_named("db.reconnected") {
        assert!(field(&e, "downtime_ms").as_u64().is_some(), "{what}: {e}");
        assert!(
            matches!(field(&e, "connection").as_str(), Some("migration" | "lease")),
            "{what}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring the clean run
// ---------------------------------------------------------------------------------------------

#[test]
fn a_clean_run_through_the_proxy_has_the_measured_shape() {
    let db = db_with_effects("netfault_measure");
    let dir = migrations(N, |_| String::new());
    let proxy = Proxy::to_server();
    let url = proxy.url(&db.url);
    let out = run(&mut cmd(&url, dir.path()));
    assert_exactly_once(&db.url, N, &out, "clean run");
    assert!(!out.has_event("db.reconnected"), "{}", out.stdout);
    let n = proxy.accepted();
    wait_until(Duration::from_secs(10), "every connection closed", || {
        proxy.stats().conns.iter().all(|c| !c.open)
    });
    let stats = proxy.stats();
    for c in &stats.conns {
        eprintln!(
            "conn {}: c2s {} msgs ({}), s2c {} msgs, flights {}",
            c.n,
            c.messages(Dir::ClientToServer),
            c.tags(Dir::ClientToServer),
            c.messages(Dir::ServerToClient),
            c.flights
        );
    }
    assert_eq!(n, 2, "two connections, migration then lease: {stats:?}");
    let mig = stats.conn(MIGRATION_CONN).expect("migration connection");
    let lease = stats.conn(LEASE_CONN).expect("lease connection");
    // The migration connection carries the migrations' SQL: far more traffic than the lease's.
    assert!(
        mig.messages(Dir::ClientToServer) > lease.messages(Dir::ClientToServer),
        "connection 1 is the migration connection: {stats:?}"
    );
    let measured = [
        mig.messages(Dir::ClientToServer),
        mig.messages(Dir::ServerToClient),
        lease.messages(Dir::ClientToServer),
        lease.messages(Dir::ServerToClient),
    ];
    assert_eq!(
        measured,
        [MIGRATION_C2S, MIGRATION_S2C, LEASE_C2S, LEASE_S2C],
        "messages per direction (migration c2s, s2c, lease c2s, s2c) changed: update the \
         constants and the generated cut tests"
    );
}

// ---------------------------------------------------------------------------------------------
// Cut at every message
// ---------------------------------------------------------------------------------------------

/// One run of 20 migrations through a proxy that cuts connection `conn` once, instead of
/// forwarding its `k`-th message in `dir`; asserts exactly-once, nothing dirty, exit 0.
fn cut_once(conn: u64, dir: Dir, k: u64) {
    let what = format!("cut of connection {conn} at message {k} {dir:?}");
    let db = db_with_effects(&format!("cut_{conn}_{k}"));
    let files = migrations(N, |_| String::new());
    let proxy = Proxy::to_server();
    let id = proxy.arm_once(Fault::CutAt {
        dir,
        message: k,
        conn: ConnMatch::Nth(conn),
    });
    let t0 = Instant::now();
    let out = run(&mut cmd(&proxy.url(&db.url), files.path()));
    let took = t0.elapsed();
    assert_eq!(proxy.fired(id), 1, "{what}: the cut fired\n{}", out.stdout);
    assert_exactly_once(&db.url, N, &out, &what);
    assert_reconnect_events_are_complete(&out, &what);
    eprintln!(
        "{what}: exit {} in {took:?}, {} reconnect(s)",
        out.code,
        out.events_named("db.reconnected").len()
    );
}

/// Cuts the connection `conn` at message `k` in each direction that has a `k`-th message
/// (`c2s` and `s2c` messages in a clean run), one run per direction.
fn cut_both_ways(conn: u64, k: u64, c2s: u64, s2c: u64) {
    assert!(k <= c2s.max(s2c), "message {k} is past the clean run's end");
    if k <= c2s {
        cut_once(conn, Dir::ClientToServer, k);
    }
    if k <= s2c {
        cut_once(conn, Dir::ServerToClient, k);
    }
}

#[test]
fn probe_cut() {
    for k in [3u64, 40, 150] {
        cut_both_ways(MIGRATION_CONN, k, 292, 429);
    }
}

//! Through the real binary: a run that survives a dropped connection. A proxy
//! ([`support::Proxy`]) cuts the migration connection, then the lease connection, once, at
//! every protocol message of a 20-migration run, in both directions; the server is restarted
//! (`pg_ctl stop -m immediate` and start) in the middle of a 200-migration run; the migration
//! connection stalls past the lease TTL; and a pipelined step refuses to commit once another
//! session took the lease mid-flight. (The pipelined step's 40001 replay and its XXA00 dirty
//! mark at COMMIT are in `cockroach_semantics.rs`; a chain's failure, replay and fence in
//! `chain.rs`.)
//!
//! The 20 migrations go out as ONE flight of chained transactions, so a cut anywhere in it can
//! leave several COMMITs in flight: some committed, the replies of none read. After the
//! reconnect the ledger says which committed, and the rest of the run goes on from there.
//!
//! Every migration inserts its version into a side-effect table `effects` in its own
//! transaction, so a double apply shows as two rows and a lost one as none: "exactly once" is
//! read from the database, not from the tool's ledger.
//!
//! Which connection is which: the binary opens the migration connection first and the lease
//! connection after it (`ConnMatch::Nth(1)` and `Nth(2)` on the case's own proxy); both send
//! the same `application_name`. [`a_clean_run_through_the_proxy_has_the_measured_shape`] pins
//! that order and the message counts the generated cut tests cover.
//!
//! Which messages are cut: every message the run waits on. After migration 20's COMMIT the
//! migration connection also carries a tail the binary never waits for: dropping the applier
//! drops its prepared ledger statements, and tokio-postgres' `Statement` drop queues a
//! Close + Sync and forgets it. The process may exit before those (and their CloseComplete +
//! ReadyForQuery) have passed the proxy, so their number at exit varies from run to run (seen:
//! 360 of 374 server messages counted, before the migrations were chained when the process had exited). A cut there would test
//! nothing of the binary (its work is over) and could not fire reliably, so the cut lists end
//! at the last awaited message; the measuring test pins the tail's exact shape apart.
//!
//! Speed: the cut tests are several hundred runs, and `CREATE DATABASE` costs about 0.4 s, so
//! each case gets a schema of its own in one shared database instead (`search_path` set through
//! the URL's `options`, which the binary sends at every connection and reconnection), and both
//! directions of one message index run at once.

mod support;

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use support::fixtures::{cmd, migrations};
use support::*;
use tempfile::TempDir;

/// Migrations in the cut runs. The message counts of a clean run are with the cut tests they
/// generate ([`migration_connection`], [`lease_connection`]).
const N: i64 = 20;
/// The prepared ledger statements closed, unawaited, after the last one: the tail of the
/// migration connection, Close + Sync each (`CS`), answered CloseComplete + ReadyForQuery
/// (`3Z`); the process may exit before any of it has passed the proxy.
const MIGRATION_CLOSED_STATEMENTS: usize = 7;

/// The first client message of migration 10's part of the chained flight in a clean run (the
/// stalls aim at it; the measuring test checks it).
const FLIGHT_10: u64 = 125;

/// At most this many flights on the migration connection of a clean run (6 measured, some
/// slack for a chain the proxy sees in two writes): the migrations go out as one.
const MIGRATION_FLIGHTS: u64 = 8;

/// The holder name every run here takes the lease as.
const HOLDER: &str = "netfault";
/// `MIGRATE_WAIT_TIMEOUT` of every run: long enough for a reconnect.
const WAIT: &str = "30s";

/// The migration connection's number on a fresh proxy.
const MIGRATION_CONN: u64 = 1;
/// The lease connection's number on a fresh proxy.
const LEASE_CONN: u64 = 2;

/// The 20 migrations of the cut runs, written once.
fn cut_files() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| migrations(N, |_| String::new())).path()
}

/// The database every case's schema lives in.
fn shared_db() -> &'static TestDb {
    static DB: OnceLock<TestDb> = OnceLock::new();
    DB.get_or_init(|| fresh_db("netfault"))
}

/// A schema of its own in the shared database, holding the side-effect table; returns the
/// shared database's URL with `search_path` set to it. `tag` goes into the schema's name.
fn case_url(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let schema = format!("{tag}_{n}");
    let db = shared_db();
    let url = format!("{}&options=-csearch_path%3D{schema}", db.url);
    psql(
        &db.url,
        &format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.effects (version INT8 NOT NULL);"),
    );
    url
}

/// One query for the whole outcome of a run:
/// `applied|dirty|effect rows|distinct effect versions|lease free|inconsistencies`, where the
/// inconsistencies are versions whose side effect and ledger row disagree or repeat.
fn outcome(url: &str) -> String {
    psql(
        url,
        "SELECT (SELECT count(*) FROM _migrations WHERE status = 'applied') || '|' ||
                (SELECT count(*) FROM _migrations WHERE status = 'dirty') || '|' ||
                (SELECT count(*) FROM effects) || '|' ||
                (SELECT count(DISTINCT version) FROM effects) || '|' ||
                (SELECT count(*) FROM _migrations_lease WHERE holder IS NULL) || '|' ||
                (SELECT coalesce(string_agg(format('%s:%s/%s', v, e, l), ',' ORDER BY v), '') FROM (
                   SELECT coalesce(e.version, l.version) AS v, coalesce(e.n, 0) AS e,
                          coalesce(l.n, 0) AS l
                   FROM (SELECT version, count(*) AS n FROM effects GROUP BY version) e
                   FULL JOIN (SELECT version, count(*) AS n FROM _migrations GROUP BY version) l
                     ON e.version = l.version) x
                 WHERE e <> l OR e > 1)",
    )
}

/// Asserts the run `out` exited 0 with every one of `n` migrations applied exactly once,
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
        format!("{n}|0|{n}|{n}|1|"),
        "{what}: applied|dirty|effects|distinct|lease free|inconsistencies\n--- stdout ---\n{}",
        out.stdout
    );
}

/// Checks the fields of every `db.reconnected` event of `out`: which connection, the attempt
/// count and the downtime.
#[track_caller]
fn assert_reconnect_events_are_complete(out: &Output, what: &str) {
    for e in out.events_named("db.reconnected") {
        assert!(field(&e, "downtime_ms").as_u64().is_some(), "{what}: {e}");
        // `db.reconnected` carries the attempt count and the downtime.
        assert!(field(&e, "attempt").as_u64().is_some(), "{what}: {e}");
        assert!(
            matches!(
                field(&e, "connection").as_str(),
                Some("migration" | "lease")
            ),
            "{what}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring the clean run
// ---------------------------------------------------------------------------------------------

/// The tags of the migration connection's messages in `dir`, split into the messages the run
/// waits on and the statement-close tail after them (Close `C` and CloseComplete `3` appear
/// nowhere else in a clean run).
fn split_at_tail(tags: &str, dir: Dir) -> (&str, &str) {
    let first = match dir {
        Dir::ClientToServer => 'C',
        Dir::ServerToClient => '3',
    };
    tags.split_at(tags.find(first).unwrap_or(tags.len()))
}

/// Message counts of one connection: (client to server, server to client).
fn counts(c: &ConnStats) -> (u64, u64) {
    (
        c.messages(Dir::ClientToServer),
        c.messages(Dir::ServerToClient),
    )
}

/// One clean run through a proxy of its own, checked; returns the tags the cut tests count on:
/// the migration connection's without its tail (c2s, s2c), the lease connection's (c2s, s2c).
fn measure_clean_run() -> [String; 4] {
    let url = case_url("measure");
    let proxy = Proxy::to_server();
    let out = run(&mut cmd(&proxy.url(&url), cut_files(), HOLDER, WAIT));
    // What the proxy had counted by the time the process was gone: what a cut test reads.
    let at_exit = proxy.stats();
    assert_exactly_once(&url, N, &out, "clean run");
    assert!(!out.has_event("db.reconnected"), "{}", out.stdout);
    wait_until(Duration::from_secs(10), "every connection closed", || {
        proxy.stats().conns.iter().all(|c| !c.open)
    });
    let stats = proxy.stats();
    for c in &stats.conns {
        eprintln!(
            "conn {}: c2s {} messages ({}), s2c {} messages ({}), {} flights",
            c.n,
            c.messages(Dir::ClientToServer),
            c.tags(Dir::ClientToServer),
            c.messages(Dir::ServerToClient),
            c.tags(Dir::ServerToClient),
            c.flights
        );
    }
    assert_eq!(
        proxy.accepted(),
        2,
        "two connections, migration then lease: {stats:?}"
    );
    let mig = stats.conn(MIGRATION_CONN).expect("migration connection");
    let lease = stats.conn(LEASE_CONN).expect("lease connection");
    // The migration connection carries the migrations' SQL; the lease connection ends with the
    // release, a prepared statement (Bind, Execute, Sync).
    let sql = |c: &ConnStats| c.tags(Dir::ClientToServer).matches('Q').count();
    assert!(
        sql(mig) >= 2 * N as usize && sql(lease) < N as usize,
        "connection 1 is the migration connection: {stats:?}"
    );
    let tags = mig.tags(Dir::ClientToServer);
    let at = FLIGHT_10 as usize - 1;
    assert_eq!(
        tags.get(at..at + 10),
        Some("QQQQBESBES"),
        "migration 10's part of the flight starts at client message {FLIGHT_10}: {tags}"
    );
    // The 20 migrations are one flight: the connection's flights are its startup, the session
    // settings, the prepared statements, the chain and the statement-close tail (over 20 when
    // each migration was a flight of its own).
    assert!(
        mig.flights <= MIGRATION_FLIGHTS,
        "the migrations went out in one flight: {} flights on the migration connection",
        mig.flights
    );
    let mig_c2s = mig.tags(Dir::ClientToServer);
    let mig_s2c = mig.tags(Dir::ServerToClient);
    let (awaited_c2s, tail_c2s) = split_at_tail(&mig_c2s, Dir::ClientToServer);
    let (awaited_s2c, tail_s2c) = split_at_tail(&mig_s2c, Dir::ServerToClient);
    // After migration 20's COMMIT (`Q`, answered `CZ`), nothing but the statement closes.
    assert!(
        awaited_c2s.ends_with('Q') && awaited_s2c.ends_with("CZ"),
        "the awaited messages end with migration 20's COMMIT: {mig_c2s} / {mig_s2c}"
    );
    assert!(
        "CS".repeat(MIGRATION_CLOSED_STATEMENTS)
            .starts_with(tail_c2s)
            && "3Z"
                .repeat(MIGRATION_CLOSED_STATEMENTS)
                .starts_with(tail_s2c),
        "the migration connection's tail is {MIGRATION_CLOSED_STATEMENTS} statement closes at \
         most, nothing else: c2s {tail_c2s:?}, s2c {tail_s2c:?}"
    );
    let measured = [
        awaited_c2s.len() as u64,
        awaited_s2c.len() as u64,
        lease.messages(Dir::ClientToServer),
        lease.messages(Dir::ServerToClient),
    ];
    assert_eq!(
        measured,
        [
            migration_connection::C2S,
            migration_connection::S2C,
            lease_connection::C2S,
            lease_connection::S2C
        ],
        "messages per direction (migration c2s, s2c without the statement-close tail, lease \
         c2s, s2c) changed: update the counts in the `cut_tests!` calls"
    );
    // The premise of "every cut fires": each message a cut test aims at has passed the proxy
    // by the time the process has exited (the run waited on it), whatever the tail did.
    let exit_mig = counts(at_exit.conn(MIGRATION_CONN).expect("migration connection"));
    let exit_lease = counts(at_exit.conn(LEASE_CONN).expect("lease connection"));
    assert!(
        exit_mig.0 >= migration_connection::C2S
            && exit_mig.1 >= migration_connection::S2C
            && exit_lease == (lease_connection::C2S, lease_connection::S2C),
        "counted when the process had exited: migration {exit_mig:?}, lease {exit_lease:?}"
    );
    [
        awaited_c2s.to_string(),
        awaited_s2c.to_string(),
        lease.tags(Dir::ClientToServer),
        lease.tags(Dir::ServerToClient),
    ]
}

#[test]
fn a_clean_run_through_the_proxy_has_the_measured_shape() {
    // Several clean runs at once, as in the cut pass: the messages the cut tests count on must
    // be the same, in number and in type, in every one.
    const RUNS: usize = 4;
    let shapes: Vec<[String; 4]> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..RUNS).map(|_| s.spawn(measure_clean_run)).collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (i, shape) in shapes.iter().enumerate().skip(1) {
        assert_eq!(
            shape, &shapes[0],
            "clean run {i} sent other messages than run 0 (migration c2s, s2c, lease c2s, s2c)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cut at every message, on the migration connection and on the lease connection
// ---------------------------------------------------------------------------------------------

/// One run of the 20 migrations through a proxy that cuts connection `conn` once, instead of
/// forwarding its `k`-th message in `dir`; asserts the cut fired, exactly-once, nothing dirty,
/// the lease released and exit 0.
fn cut_once(conn: u64, dir: Dir, k: u64) {
    let what = format!("cut of connection {conn} at message {k} {dir:?}");
    let arrow = match dir {
        Dir::ClientToServer => "c2s",
        Dir::ServerToClient => "s2c",
    };
    let url = case_url(&format!("cut{conn}_{arrow}_{k}"));
    let proxy = Proxy::to_server();
    let id = proxy.arm_once(Fault::CutAt {
        dir,
        message: k,
        conn: ConnMatch::Nth(conn),
    });
    let t0 = Instant::now();
    let out = run_with_deadline(
        &mut cmd(&proxy.url(&url), cut_files(), HOLDER, WAIT),
        Duration::from_secs(60),
    );
    let took = t0.elapsed();
    // The proxy's final count: done with every connection of the run.
    wait_until(
        Duration::from_secs(10),
        "every proxied connection closed",
        || proxy.stats().conns.iter().all(|c| !c.open),
    );
    assert_eq!(
        proxy.fired(id),
        1,
        "{what}: the cut fired\n--- stdout ---\n{}",
        out.stdout
    );
    assert_exactly_once(&url, N, &out, &what);
    assert_reconnect_events_are_complete(&out, &what);
    eprintln!(
        "{what}: exit 0 in {took:?}, {} reconnect(s)",
        out.events_named("db.reconnected").len()
    );
}

/// Cuts connection `conn` at message `k`, in each direction that has a `k`-th message in a
/// clean run (`c2s` and `s2c` messages), both runs at once.
fn cut_both_ways(conn: u64, k: u64, c2s: u64, s2c: u64) {
    assert!(
        (1..=c2s.max(s2c)).contains(&k),
        "message {k} is not in a clean run"
    );
    std::thread::scope(|s| {
        let runs: Vec<_> = [(Dir::ClientToServer, c2s), (Dir::ServerToClient, s2c)]
            .into_iter()
            .filter(|(_, count)| k <= *count)
            .map(|(dir, _)| s.spawn(move || cut_once(conn, dir, k)))
            .collect();
        for r in runs {
            if let Err(panic) = r.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// One `#[test]` per message index of a clean run on one connection, `$module::at_<k>` for `k`
/// from 1 up to the larger of its two counts, zero-padded to that count's digits (`at_001` ..
/// `at_417`): [`cut_both_ways`] at `k`, in each direction that has `k` messages. The counts are
/// literals because the tests' names are made from them (`seq!`); the module exports them as
/// `C2S` and `S2C` for the measuring test, which checks them against a clean run.
macro_rules! cut_tests {
    ($module:ident: connection $conn:expr, c2s $c2s:literal, s2c $s2c:literal) => {
        /// Generated by `cut_tests!` from the measured counts: one test per message index.
        mod $module {
            /// Messages of a clean run on this connection, client to server.
            pub const C2S: u64 = $c2s;
            /// The same, server to client.
            pub const S2C: u64 = $s2c;

            // The names run up to the server's count, the larger one in this protocol (every
            // query is answered with several messages); the build stops here if it is not.
            const _: () = assert!(C2S <= S2C, "more client than server messages");

            seq_macro::seq!(K in 001..=$s2c {
                #[test]
                fn at_~K() {
                    super::cut_both_ways($conn, K, C2S, S2C);
                }
            });
        }
    };
}

// The messages of a clean 20-migration run that the run waits on, per connection and
// direction. When a change to the binary changes its round trips, the measuring test
// ([`a_clean_run_through_the_proxy_has_the_measured_shape`]) fails naming the new counts:
// change them here, and the cut tests follow.
//
// Migration connection: client to server up to migration 20's COMMIT, before the
// statement-close tail; server to client up to the ReadyForQuery answering that COMMIT.
cut_tests! { migration_connection: connection super::MIGRATION_CONN, c2s 235, s2c 423 }
// Lease connection: the whole of it.
cut_tests! { lease_connection: connection super::LEASE_CONN, c2s 20, s2c 48 }

// ---------------------------------------------------------------------------------------------
// A run in the background
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The server restarted mid-run
// ---------------------------------------------------------------------------------------------

#[test]
fn a_server_restarted_mid_run_is_ridden_out_and_every_migration_applies_once() {
    const MANY: i64 = 200;
    // Commits survive an immediate shutdown only once in the WAL: synchronous_commit back on.
    let mut custom = start_custom(CustomOpts {
        conf: vec!["synchronous_commit = on".into()],
        ..CustomOpts::default()
    });
    psql(&custom.admin_url("postgres"), "CREATE DATABASE restarted");
    let admin = custom.admin_url("restarted");
    psql(&admin, "CREATE TABLE effects (version INT8 NOT NULL)");
    let url = format!(
        "{}?sslmode=disable",
        custom.url("postgres", None, "restarted")
    );
    let files = migrations(MANY, |_| String::new());
    let run = Background::spawn(&mut cmd(&url, files.path(), HOLDER, WAIT));
    let applied = || {
        try_psql(&admin, "SELECT count(*) FROM _migrations")
            .ok()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(60), "20 migrations applied", || {
        applied() >= 20
    });
    let t0 = Instant::now();
    custom.restart_immediate();
    let down = t0.elapsed();
    let at_restart = applied();
    let out = run.wait(Duration::from_secs(90));
    assert!(
        at_restart < MANY,
        "the restart came after the run's end ({at_restart} applied): not mid-run"
    );
    assert_exactly_once(&admin, MANY, &out, "server restarted mid-run");
    let reconnects = out.events_named("db.reconnected");
    assert!(
        !reconnects.is_empty(),
        "the run saw the restart\n{}",
        out.stdout
    );
    assert_reconnect_events_are_complete(&out, "restart");
    eprintln!(
        "restart after {at_restart}/{MANY} applied, server down {down:?}, {} reconnect event(s): {reconnects:?}",
        reconnects.len()
    );
}

// ---------------------------------------------------------------------------------------------
// A stall past the TTL
// ---------------------------------------------------------------------------------------------

/// How long a stalled run may take: a few TTLs for the server to end the session, plus the
/// reconnect. Past it the run is killed and the test fails (a run stuck for ever).
const STALL_DEADLINE: Duration = Duration::from_secs(30);

/// Stalls the migration connection from its `k`-th message in `dir` on, with a 2 s TTL: the
/// run ends fenced off (12) or carries on (0), and never applies a migration twice.
fn stall_past_the_ttl(dir: Dir, k: u64) {
    let what = format!("stall of the migration connection at message {k} {dir:?}");
    let url = case_url("stall");
    let proxy = Proxy::to_server();
    let id = proxy.arm_once(Fault::StallAt {
        dir,
        message: k,
        conn: ConnMatch::Nth(MIGRATION_CONN),
    });
    let t0 = Instant::now();
    let out = run_with_deadline(
        cmd(&proxy.url(&url), cut_files(), HOLDER, WAIT).env("MIGRATE_LEASE_TTL", "2s"),
        STALL_DEADLINE,
    );
    let took = t0.elapsed();
    assert_eq!(proxy.fired(id), 1, "{what}: the stall fired");
    let state = outcome(&url);
    let fields: Vec<&str> = state.split('|').collect();
    assert_eq!(fields.len(), 6, "{state}");
    let (applied, dirty, effects, distinct, inconsistent) =
        (fields[0], fields[1], fields[2], fields[3], fields[5]);
    assert_eq!(
        (dirty, inconsistent),
        ("0", ""),
        "{what}: nothing dirty, ledger and effects agree: {state}"
    );
    assert_eq!(
        effects, distinct,
        "{what}: no migration applied twice: {state}"
    );
    assert_eq!(applied, effects, "{what}: {state}");
    match out.code {
        0 => assert_exactly_once(&url, N, &out, &what),
        12 => assert!(out.stderr.contains("lease"), "{what}: {}", out.stderr),
        other => panic!(
            "{what}: exit {other}, expected 0 or 12\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout, out.stderr
        ),
    }
    eprintln!("{what}: exit {} after {took:?}; {state}", out.code);
}

#[test]
fn a_stall_past_the_ttl_inside_a_flight_to_the_server_never_double_applies() {
    // Client message 122 is the third of migration 10's part of the chained flight
    // (`QQQQBESBES`, from message 120 on: [`FLIGHT_10`]): 1..9 committed, the server holds
    // migration 10's open transaction and hears no more.
    stall_past_the_ttl(Dir::ClientToServer, FLIGHT_10 + 2);
}

#[test]
fn a_stall_past_the_ttl_before_a_flight_reaches_the_server_never_double_applies() {
    // Client message 120 is the first of migration 10's part of the flight: the server ran 1..9,
    // never hears of 10 and sits idle, outside any transaction, while the client waits for the
    // replies.
    stall_past_the_ttl(Dir::ClientToServer, FLIGHT_10);
}

#[test]
fn a_stall_past_the_ttl_of_the_replies_never_double_applies() {
    // Server message 200 is inside the replies to the chained flight: the steps after it
    // committed (or not) on the server, the client never hears which.
    stall_past_the_ttl(Dir::ServerToClient, 200);
}

// ---------------------------------------------------------------------------------------------
// The fence taken over mid-flight
// ---------------------------------------------------------------------------------------------

#[test]
fn a_lease_taken_over_mid_flight_is_not_committed_and_the_run_exits_12() {
    let url = case_url("takeover");
    let files = migrations(3, |v| {
        if v == 2 {
            "SELECT pg_sleep(2);".into()
        } else {
            String::new()
        }
    });
    let run = Background::spawn(&mut cmd(&url, files.path(), HOLDER, WAIT));
    wait_until(
        Duration::from_secs(30),
        "migration 2's pipelined flight sleeping on the server",
        || {
            psql(
                &url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state = 'active' AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()",
            ) != "0"
        },
    );
    // Another session takes the lease by force while the flight is on the server.
    psql(
        &url,
        "UPDATE _migrations_lease SET holder = 'intruder', fence = fence + 1, \
         expires_at = now() + INTERVAL '5 minutes'",
    );
    let out = run.wait(Duration::from_secs(60));
    out.expect_code(12);
    assert_eq!(
        outcome(&url),
        "1|0|1|1|0|",
        "only migration 1 committed, the lease left to the intruder\n{}",
        out.stdout
    );
    assert_eq!(
        psql(&url, "SELECT to_regclass('t_2') IS NULL"),
        "t",
        "migration 2's table rolled back"
    );
    assert_eq!(
        psql(&url, "SELECT holder FROM _migrations_lease"),
        "intruder",
        "a fenced-off run does not release a lease that is not its own"
    );
}

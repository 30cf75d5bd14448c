//! The binary's CockroachDB branches, end to end, on PostgreSQL dressed as CockroachDB
//! (`support::dressed`): a `version()` that says CockroachDB v26.1, and a `crdb_internal`
//! that is readable (as up to v25.4) or revoked (42501, as a default v26.1); or a minimal dress,
//! `version()` alone with `crdb_internal` revoked or absent, through every command. The server
//! logs every statement, so the tests also read what each flight sent and in what order.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::dressed::{
    Dress, Dressed, Gate, add_job, dressed_server, errors_outside_transactions, first, is_sent,
    pretend_database, sent, sent_in_transactions,
};
use support::fixtures::{self, ledger_rows};
use support::*;

fn set() -> tempfile::TempDir {
    dir_with(&[
        (
            "1_users.sql",
            b"CREATE TABLE users (id INT8 PRIMARY KEY);\n-- @UNDO\nDROP TABLE users;\n",
        ),
        (
            "2_email.sql",
            b"ALTER TABLE users ADD COLUMN email TEXT;\n-- @UNDO\nALTER TABLE users DROP COLUMN email;\n",
        ),
    ])
}

/// The binary against `url` (a dressed database's, or a proxy's in front of one), holder
/// `dressed-test`, waiting up to `job_wait` for schema-change jobs.
fn cmd_on(url: &str, dir: &Path, job_wait: &str) -> Command {
    let mut cmd = fixtures::cmd(url, dir, "dressed-test", "10s");
    cmd.env("MIGRATE_JOB_WAIT_TIMEOUT", job_wait);
    cmd
}

fn run_on(d: &Dressed, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = cmd_on(&d.url, dir, "20s");
    cmd.envs(env.iter().copied());
    run(cmd.args(args))
}

fn spawn_on(d: &Dressed, dir: &Path, args: &[&str]) -> Background {
    Background::spawn(cmd_on(&d.url, dir, "30s").args(args))
}

#[test]
fn the_dress_resolves_before_pg_catalog() {
    let d = dressed_server().fresh("dress", Gate::Revoked, true);
    let got = psql(
        &d.url,
        "SELECT version(), pg_catalog.version() LIKE 'PostgreSQL%', current_setting('session_id') = lpad(to_hex(pg_backend_pid()), 32, '0'), current_database() = pg_catalog.current_database()",
    );
    assert_eq!(
        got,
        format!("{}|t|t|t", support::dressed::DRESSED_VERSION),
        "unqualified version() must be the dress's"
    );
    let refused = try_psql(&d.url, "SELECT count(*) FROM crdb_internal.jobs").unwrap_err();
    assert!(refused.contains("permission denied"), "{refused}");
}

#[test]
fn on_a_default_v26_1_migrate_status_and_rollback_warn_that_jobs_are_unlisted_and_go_on() {
    let server = dressed_server();
    let d = server.fresh("v26", Gate::Revoked, true);
    let dir = set();
    let out = run_on(&d, dir.path(), &[], &["migrate"]);
    out.expect_code(0);
    let ready = out.events_named("db.ready");
    assert_eq!(
        field(&ready[0], "flavour").as_str(),
        Some("CockroachDB"),
        "{}",
        out.stdout
    );
    let unlisted = out.events_named("job.unlisted");
    assert_eq!(unlisted.len(), 1, "{}", out.stdout);
    let reason = field(&unlisted[0], "reason").as_str().unwrap_or_default();
    assert!(
        reason.contains("crdb_internal.jobs") && reason.contains("42501"),
        "{reason}"
    );
    assert!(reason.contains("SHOW JOBS"), "{reason}");
    assert_eq!(
        out.events_named("migration.applied").len(),
        2,
        "{}",
        out.stdout
    );
    assert!(table_exists(&d.admin(), "users"));

    let status = run_on(&d, dir.path(), &[], &["status", "--json"]);
    status.expect_code(0);
    let s: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(s["current_version"], 2);
    assert_eq!(s["jobs"], serde_json::json!([]));
    assert!(status.stderr.contains("job.unlisted"), "{}", status.stderr);

    let back = run_on(&d, dir.path(), &[], &["rollback"]);
    back.expect_code(0);
    assert_eq!(
        back.events_named("migration.rolled_back").len(),
        1,
        "{}",
        back.stdout
    );

    let log = server.statements(&d.name);
    // The probe asks the version and whether the database exists, in one statement.
    assert!(log[0].text.contains("version()"), "{:?}", log[0]);
    assert!(
        log[0].text.contains("pg_catalog.pg_database"),
        "{:?}",
        log[0]
    );
    // The session is known by its CockroachDB session id; the pid is never asked.
    assert!(!sent(&log, "current_setting('session_id', true)").is_empty());
    assert!(sent(&log, "pg_backend_pid").is_empty(), "{log:#?}");
    assert!(!sent(&log, "SET autocommit_before_ddl = off").is_empty());
    // crdb_internal first, [SHOW JOBS] next, before the first migration.
    let internal = first(&log, "FROM crdb_internal.jobs");
    let show = first(&log, "FROM [SHOW JOBS]");
    let create = first(&log, "CREATE TABLE users");
    assert!(
        internal < show && show < create,
        "{internal} {show} {create}"
    );
    // Refusals are the server's, each outside any transaction.
    let errors = errors_outside_transactions(&log);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("permission denied for schema crdb_internal")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unrecognized configuration parameter")),
        "{errors:?}"
    );
}

#[test]
fn with_readable_internals_a_running_job_on_our_table_is_waited_for() {
    let server = dressed_server();
    let d = server.fresh("v25_wait", Gate::Readable, false);
    let dir = set();
    // Version 1 first; then a job "still running" on users, as a peer's schema change would be.
    run_on(&d, dir.path(), &[], &["migrate", "--target", "1"]).expect_code(0);
    add_job(&d.admin_url, 101, "running", "users", 55, "postgres");
    let bg = spawn_on(&d, dir.path(), &["migrate"]);
    wait_until(Duration::from_secs(20), "job.waiting", || {
        bg.has_logged("job.waiting")
    });
    assert!(
        !column_exists(&d.admin(), "users", "email"),
        "waited before applying"
    );
    psql(
        &d.admin_url,
        "UPDATE crdb_internal.jobs SET status = 'succeeded' WHERE job_id = 101",
    );
    let out = bg.wait(Duration::from_secs(30));
    out.expect_code(0);
    let found = out.events_named("job.found");
    assert_eq!(
        field(&found[0], "job_id").as_i64(),
        Some(101),
        "{}",
        out.stdout
    );
    assert_eq!(out.events_named("job.done").len(), 1, "{}", out.stdout);
    assert!(
        out.events_named("job.unlisted").is_empty(),
        "an admin sees every job"
    );
    assert!(column_exists(&d.admin(), "users", "email"));
}

#[test]
fn with_readable_internals_a_paused_job_on_our_table_refuses_and_status_lists_it() {
    let server = dressed_server();
    let d = server.fresh("v25_paused", Gate::Readable, false);
    let dir = set();
    run_on(&d, dir.path(), &[], &["migrate", "--target", "1"]).expect_code(0);
    add_job(&d.admin_url, 202, "paused", "users", 56, "postgres");
    let out = run_on(&d, dir.path(), &[], &["migrate"]);
    out.expect_code(32);
    assert!(out.stderr.contains("SHOW JOB 202"), "{}", out.stderr);
    let status = run_on(&d, dir.path(), &[], &["status", "--json"]);
    status.expect_code(0);
    let s: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(s["jobs"][0]["id"], 202, "{s}");
    assert_eq!(s["jobs"][0]["tables"], serde_json::json!(["users"]), "{s}");
}

#[test]
fn a_user_that_is_not_an_admin_is_told_it_may_not_see_every_job() {
    let server = dressed_server();
    let d = server.fresh("v25_role", Gate::Readable, true);
    let out = run_on(&d, set().path(), &[], &["migrate"]);
    out.expect_code(0);
    let unlisted = out.events_named("job.unlisted");
    assert_eq!(unlisted.len(), 1, "{}", out.stdout);
    assert_eq!(field(&unlisted[0], "reason").as_str(), Some("not an admin"));
    assert_eq!(field(&unlisted[0], "user").as_str(), Some(d.user.as_str()));
    // Granted admin: quiet.
    psql(
        &d.admin_url,
        &format!("GRANT admin TO {}", quote_ident(&d.user)),
    );
    let out = run_on(&d, set().path(), &[], &["rollback"]);
    out.expect_code(0);
    assert!(
        out.events_named("job.unlisted").is_empty(),
        "{}",
        out.stdout
    );
}

#[test]
fn a_login_to_a_missing_database_is_exit_20_naming_it() {
    let server = dressed_server();
    let d = server.fresh("missing", Gate::Revoked, true);
    pretend_database(&d.admin_url, &d.name, &d.user, "no_such_db");
    let dir = set();
    for args in [&["migrate"][..], &["status"][..]] {
        let out = run_on(&d, dir.path(), &[], args);
        out.expect_code(20);
        assert!(out.stderr.contains(&d.name), "{args:?}: {}", out.stderr);
    }
    // Nothing was created in the database that "is not there".
    assert!(!table_exists(&d.admin(), "_migrations"));
    let log = server.statements(&d.name);
    assert!(sent(&log, "_migrations").is_empty(), "{log:#?}");
}

#[test]
fn create_database_on_a_missing_database_goes_through_defaultdb_as_on_cockroachdb() {
    let server = dressed_server();
    let d = server.fresh("create", Gate::Revoked, true);
    pretend_database(&d.admin_url, &d.name, &d.user, "no_such_db");
    let defaultdb = server.defaultdb();
    let out = run_on(
        &d,
        set().path(),
        &[("MIGRATE_CREATE_DATABASE", "true")],
        &["migrate"],
    );
    // CockroachDB's `CREATE DATABASE IF NOT EXISTS` is sent through defaultdb, as on a real
    // cluster; PostgreSQL cannot parse it, so the dress ends there (exit 20 naming it).
    out.expect_code(20);
    assert!(out.stderr.contains("creating database"), "{}", out.stderr);
    let log = server.statements(&defaultdb);
    let wanted = format!("CREATE DATABASE IF NOT EXISTS \"{}\"", d.name);
    assert!(!sent(&log, &wanted).is_empty(), "{log:#?}");
}

#[test]
fn progress_reads_jobs_when_it_can_and_elapsed_time_when_it_cannot() {
    let server = dressed_server();
    for (gate, tag) in [(Gate::Readable, "prog_ok"), (Gate::Revoked, "prog_gated")] {
        let d = server.fresh(tag, gate, false);
        // A job of ours appears once the migration starts (the revoked dress's role could not
        // add one, nor would it be readable).
        let job = match gate {
            Gate::Readable => {
                "INSERT INTO crdb_internal.jobs (job_id, status, running_status, fraction_completed, user_name) \
                 VALUES (303, 'running', 'backfilling', 0.5, current_user);"
            }
            Gate::Revoked | Gate::Absent => "SELECT 1;",
        };
        let body =
            format!("-- @NO_TRANSACTION\n{job}\nSELECT pg_sleep(2.5);\n-- @UNDO\nSELECT 1;\n");
        let dir = dir_with(&[("1_slow.sql", body.as_bytes())]);
        let env = [("MIGRATE_PROGRESS_INTERVAL", "1s")];
        let out = run_on(&d, dir.path(), &env, &["migrate"]);
        out.expect_code(0);
        let progress = out.events_named("migration.progress");
        assert!(!progress.is_empty(), "{tag}: {}", out.stdout);
        let with_job = progress
            .iter()
            .any(|e| field(e, "job_id").as_i64() == Some(303));
        assert_eq!(with_job, gate == Gate::Readable, "{tag}: {}", out.stdout);
        if gate == Gate::Revoked {
            // Refused once each (the listing at start), then never asked again: the samples
            // log elapsed time without sending what the server refuses.
            let log = server.statements(&d.name);
            assert_eq!(sent(&log, "FROM [SHOW JOBS]").len(), 1, "{log:#?}");
            assert_eq!(sent(&log, "FROM crdb_internal.jobs").len(), 1, "{log:#?}");
        }
    }
}

#[test]
fn a_dropped_migration_session_is_cancelled_by_its_cockroachdb_session_id() {
    let server = dressed_server();
    // Jobs readable: when the old session committed before it was ended, the run checks the
    // step's schema-change jobs (none here) instead of marking it dirty for want of a listing.
    let d = server.fresh("end_session", Gate::Readable, true);
    let proxy = Proxy::start(([127, 0, 0, 1], server.port()).into());
    let dir = dir_with(&[(
        "1_slow.sql",
        b"CREATE TABLE slow (id INT8);\nSELECT pg_sleep(1.5);\n-- @UNDO\nDROP TABLE slow;\n",
    )]);
    let bg = Background::spawn(cmd_on(&proxy.url(&d.url), dir.path(), "20s").args(["migrate"]));
    // Once the server runs the sleep, every earlier reply of the flight has been sent.
    wait_until(
        Duration::from_secs(20),
        "the migration's pg_sleep running",
        || {
            psql(
                &d.admin_url,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()",
            ) == "1"
        },
    );
    // The migration connection (the first) loses the reply to its flight: the run reconnects
    // and ends the old session, by id on CockroachDB.
    let so_far = proxy
        .stats()
        .conn(1)
        .map(|c| c.messages(Dir::ServerToClient))
        .expect("the migration connection");
    let id = proxy.arm_once(Fault::CutAt {
        dir: Dir::ServerToClient,
        message: so_far + 1,
        conn: ConnMatch::Nth(1),
    });
    let out = bg.wait(Duration::from_secs(60));
    out.expect_code(0);
    assert_eq!(proxy.fired(id), 1, "{}", out.stdout);
    // The pipelined flight may have committed before its replies were cut: either way the
    // ledger says applied, once.
    assert_eq!(
        psql(
            &d.admin_url,
            "SELECT string_agg(version || ':' || status, ',') FROM _migrations"
        ),
        "1:applied"
    );
    let log = server.statements(&d.name);
    // PostgreSQL cannot parse CANCEL SESSION: the dress shows it was sent, with the old
    // session's id (its pid in the dressed `session_id`) in the warning.
    assert!(
        !sent(&log, "CANCEL SESSION IF EXISTS $1").is_empty(),
        "{log:#?}"
    );
    let sleeper = log
        .iter()
        .find(|l| is_sent(l) && l.text.contains("pg_sleep(1.5)"))
        .expect("the migration's statement")
        .pid;
    let events = out.events();
    let warned: Vec<&Value> = events
        .iter()
        .filter(|e| field(e, "session_id").is_string())
        .collect();
    assert_eq!(warned.len(), 1, "{}", out.stdout);
    assert_eq!(
        field(warned[0], "session_id").as_str(),
        Some(format!("{sleeper:032x}").as_str()),
        "{}",
        out.stdout
    );
}

#[test]
fn wait_polls_through_a_missing_database_until_it_is_there() {
    let server = dressed_server();
    let d = server.fresh("wait_missing", Gate::Revoked, true);
    let dir = set();
    run_on(&d, dir.path(), &[], &["migrate"]).expect_code(0);
    // Blue-green: the app's init container starts before its database "exists".
    pretend_database(&d.admin_url, &d.name, &d.user, "not_yet");
    let mut cmd = bin_at(&d.url, dir.path());
    cmd.env("MIGRATE_WAIT_TIMEOUT", "30s")
        .args(["wait", "--version", "2"]);
    let bg = Background::spawn(&mut cmd);
    wait_until(Duration::from_secs(20), "wait.polling", || {
        bg.has_logged("wait.polling")
    });
    psql(
        &d.admin_url,
        &format!(
            "ALTER ROLE {} IN DATABASE {} RESET crdb_dress.database",
            quote_ident(&d.user),
            quote_ident(&d.name)
        ),
    );
    let out = bg.wait(Duration::from_secs(40));
    out.expect_code(0);
    let polls = out.events_named("wait.polling");
    assert_eq!(
        field(&polls[0], "connected").as_bool(),
        Some(false),
        "{}",
        out.stdout
    );
    assert_eq!(out.events_named("wait.reached").len(), 1, "{}", out.stdout);
}

/// Four migrations: a plain one, one with its own statement timeout, a `@NO_TRANSACTION` one
/// that runs long enough for progress reports, and a last plain one.
fn minimal_set() -> tempfile::TempDir {
    dir_with(&[
        (
            "1_users.sql",
            b"CREATE TABLE users (id INT8 PRIMARY KEY);\n-- @UNDO\nDROP TABLE users;\n",
        ),
        (
            "2_email.sql",
            b"-- @STATEMENT_TIMEOUT 30s\nALTER TABLE users ADD COLUMN email TEXT;\n\
              -- @UNDO\nALTER TABLE users DROP COLUMN email;\n",
        ),
        (
            "3_email_index.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX IF NOT EXISTS users_email ON users (email);\n\
              SELECT pg_sleep(1.5);\n-- @UNDO\nDROP INDEX IF EXISTS users_email;\n",
        ),
        (
            "4_orders.sql",
            b"CREATE TABLE orders (id INT8 PRIMARY KEY);\n-- @UNDO\nDROP TABLE orders;\n",
        ),
    ])
}

/// What only CockroachDB runs: never inside a transaction on a server that may refuse it.
const COCKROACH_ONLY: &[&str] = &[
    "crdb_internal",
    "SHOW JOB",
    "autocommit_before_ddl",
    "session_id",
    "CANCEL SESSION",
];

/// The minimal dress (only `version()`, `crdb_internal` revoked or absent) through every
/// command, as a role that is not a superuser: each exits 0, and the log shows what PostgreSQL
/// refused was refused outside any transaction.
fn every_command_on_a_minimal_dress(gate: Gate, tag: &str) {
    let server = dressed_server();
    let d = server.fresh_as(tag, Dress::Minimal, gate, true);
    assert_eq!(
        psql(
            &d.url,
            "SELECT version(), rolsuper FROM pg_roles WHERE rolname = current_user"
        ),
        format!("{}|f", support::dressed::DRESSED_VERSION)
    );
    let dir = minimal_set();
    // Progress is sampled (on a side connection) while the sleep runs.
    let progress = [("MIGRATE_PROGRESS_INTERVAL", "500ms")];
    let out = run_on(&d, dir.path(), &progress, &["migrate"]);
    out.expect_code(0);
    assert!(
        !out.events_named("migration.progress").is_empty(),
        "{}",
        out.stdout
    );
    let ready = out.events_named("db.ready");
    assert_eq!(field(&ready[0], "flavour").as_str(), Some("CockroachDB"));
    assert_eq!(
        out.events_named("migration.applied").len(),
        4,
        "{}",
        out.stdout
    );
    let unlisted = out.events_named("job.unlisted");
    assert_eq!(unlisted.len(), 1, "{}", out.stdout);
    let reason = field(&unlisted[0], "reason").as_str().unwrap_or_default();
    let internals = if gate == Gate::Absent {
        "42P01"
    } else {
        "42501"
    };
    assert!(
        reason.contains(internals) && reason.contains("42601"),
        "{reason}"
    );
    assert_eq!(
        ledger_rows(&d.admin()),
        "1:applied,2:applied,3:applied,4:applied"
    );

    let status = run_on(&d, dir.path(), &[], &["status", "--json"]);
    status.expect_code(0);
    let s: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(s["current_version"], 4, "{s}");
    assert_eq!(s["jobs"], serde_json::json!([]), "{s}");
    assert!(status.stderr.contains("job.unlisted"), "{}", status.stderr);

    run_on(&d, dir.path(), &[], &["plan"]).expect_code(0);
    run_on(&d, dir.path(), &[], &["wait", "--version", "4"]).expect_code(0);

    let back = run_on(&d, dir.path(), &[], &["rollback"]);
    back.expect_code(0);
    assert_eq!(
        back.events_named("migration.rolled_back").len(),
        1,
        "{}",
        back.stdout
    );
    assert_eq!(
        back.events_named("job.unlisted").len(),
        1,
        "{}",
        back.stdout
    );
    assert_eq!(ledger_rows(&d.admin()), "1:applied,2:applied,3:applied");
    let back = run_on(&d, dir.path(), &[], &["rollback", "--count", "2"]);
    back.expect_code(0);
    assert_eq!(
        back.events_named("migration.rolled_back").len(),
        2,
        "{}",
        back.stdout
    );
    assert_eq!(ledger_rows(&d.admin()), "1:applied");
    assert!(!column_exists(&d.admin(), "users", "email"));

    // A deliberate edit of an applied file, accepted.
    let edited = dir.path().join("1_users.sql");
    let mut body = std::fs::read_to_string(&edited).expect("read");
    body.insert_str(0, "-- reviewed\n");
    std::fs::write(&edited, body).expect("write");
    let drift = run_on(&d, dir.path(), &[], &["status"]);
    drift.expect_code(0);
    assert!(drift.stdout.contains("CHANGED"), "{}", drift.stdout);
    let repair = run_on(
        &d,
        dir.path(),
        &[],
        &["repair", "--version", "1", "--accept-checksum"],
    );
    repair.expect_code(0);
    assert_eq!(repair.events_named("repair").len(), 1, "{}", repair.stdout);
    let clean = run_on(&d, dir.path(), &[], &["status"]);
    clean.expect_code(0);
    assert!(!clean.stdout.contains("CHANGED"), "{}", clean.stdout);
    run_on(&d, dir.path(), &[], &["unlock"]).expect_code(0);
    run_on(&d, dir.path(), &[], &["unlock", "--force"]).expect_code(0);

    // baseline wants an empty ledger: a second database in the same dress.
    let b = server.fresh_as(&format!("{tag}_base"), Dress::Minimal, gate, true);
    let base = run_on(&b, dir.path(), &[], &["baseline", "--version", "4"]);
    base.expect_code(0);
    assert_eq!(
        ledger_rows(&b.admin()),
        "1:applied,2:applied,3:applied,4:applied"
    );
    assert!(
        !table_exists(&b.admin(), "users"),
        "a baseline runs nothing"
    );

    // baseline sends nothing only CockroachDB has: it writes rows and reads no jobs.
    for (db, refused) in [(&d, true), (&b, false)] {
        let log = server.statements(&db.name);
        assert!(
            !sent(&log, "_migrations").is_empty(),
            "{}: {log:#?}",
            db.name
        );
        // Refused (crdb_internal, [SHOW JOBS], unknown settings), never inside a transaction.
        let errors = errors_outside_transactions(&log);
        assert_eq!(!errors.is_empty(), refused, "{}: {log:#?}", db.name);
        if refused {
            for what in [
                "unrecognized configuration parameter",
                "crdb_internal",
                "\"[\"",
            ] {
                assert!(
                    errors.iter().any(|e| e.contains(what)),
                    "{what}: {errors:?}"
                );
            }
        }
        for l in sent_in_transactions(&log) {
            for needle in COCKROACH_ONLY {
                assert!(
                    !l.text.contains(needle),
                    "{needle} inside a transaction: {l:?}"
                );
            }
        }
    }
    let log = server.statements(&d.name);
    // Each refused statement was sent on its own: no batch around it failed with it.
    for l in log.iter().filter(|l| l.tag == "STATEMENT") {
        assert!(
            !l.text.trim_end().trim_end_matches(';').contains(';'),
            "{l:?}"
        );
    }
    migration_flight_in_order(&log, "CREATE TABLE users");
    migration_flight_in_order(&log, "ALTER TABLE users ADD COLUMN email");
    // The migration's own limit comes first in its flight.
    let email = first(&log, "ALTER TABLE users ADD COLUMN email");
    assert!(
        log[..email]
            .iter()
            .rev()
            .find(|l| is_sent(l) && l.text.contains("SET LOCAL statement_timeout"))
            .is_some_and(|l| l.text.contains("30000ms")),
        "{log:#?}"
    );
}

/// The transactional flight that ran `needle`, on its session: `BEGIN ISOLATION LEVEL
/// SERIALIZABLE`, the migration's SQL, the fence-checked ledger write, `SET LOCAL
/// statement_timeout = 0`, `COMMIT`, in that order.
fn migration_flight_in_order(log: &[support::dressed::Logged], needle: &str) {
    let at = first(log, needle);
    let pid = log[at].pid;
    let session: Vec<&support::dressed::Logged> =
        log.iter().filter(|l| l.pid == pid && is_sent(l)).collect();
    let here = session
        .iter()
        .position(|l| l.text.contains(needle))
        .expect("in its session");
    let begin = session[..here]
        .iter()
        .rposition(|l| l.text.trim_start().to_uppercase().starts_with("BEGIN"))
        .expect("a BEGIN before the migration");
    let flight: Vec<&str> = session[begin..]
        .iter()
        .map(|l| l.text.as_str())
        .take_while(|t| !t.trim_start().to_uppercase().starts_with("COMMIT"))
        .collect();
    let commit = begin + flight.len();
    assert!(
        commit < session.len() && session[commit].text.trim().eq_ignore_ascii_case("COMMIT"),
        "{flight:#?}"
    );
    assert_eq!(
        flight[0].trim(),
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "{flight:#?}"
    );
    let pos = |what: &str| {
        flight
            .iter()
            .position(|t| t.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {flight:#?}"))
    };
    let sql = pos(needle);
    let write = pos("INSERT INTO");
    let unlimit = pos("SET LOCAL statement_timeout = 0");
    assert!(flight[write].contains("_migrations"), "{flight:#?}");
    assert!(sql < write && write < unlimit, "{flight:#?}");
    assert_eq!(unlimit, flight.len() - 1, "{flight:#?}");
    // The fence check sits between the SQL and the ledger write.
    assert!(
        flight[sql + 1..write]
            .iter()
            .any(|t| t.contains("_migrations_lease")),
        "{flight:#?}"
    );
}

#[test]
fn on_a_minimal_default_v26_1_with_revoked_internals_every_command_goes_on() {
    every_command_on_a_minimal_dress(Gate::Revoked, "min_revoked");
}

#[test]
fn on_a_minimal_dress_without_crdb_internal_every_command_goes_on() {
    every_command_on_a_minimal_dress(Gate::Absent, "min_absent");
}

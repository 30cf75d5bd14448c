//! The migration connection lost while COMMIT waits for CockroachDB's schema-change jobs, on
//! PostgreSQL dressed as CockroachDB (`support::dressed`): the fault proxy cuts the connection
//! at COMMIT's reply, so the transaction committed and the client never heard how its jobs
//! ended. After the reconnect the ledger says `applied`; the run must then judge the step's
//! jobs before going on: a job that ends `failed` marks the version dirty (exit 31), one that
//! ends `succeeded` lets the run go on, and jobs that cannot be listed at all mark it dirty.
//!
//! The first migration adds its own fake job (readable dress): a row in the dressed
//! `crdb_internal.jobs` written in its transaction, so the job exists exactly when the
//! transaction committed, as the jobs of a real CockroachDB transaction do.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::dressed::{Dressed, Gate, dressed_server, sent};
use support::fixtures::{self, ledger_rows};
use support::*;

/// Migration 1 creates `users` (and, with `job`, its schema-change job 404, `running`);
/// migration 2 alters it.
fn set(job: bool) -> tempfile::TempDir {
    let job_sql = if job {
        "INSERT INTO crdb_internal.tables (table_id, name) VALUES (77, 'users');\n\
         INSERT INTO crdb_internal.jobs (job_id, description, status, descriptor_ids) \
         VALUES (404, 'CREATE TABLE dressed.public.users (id INT8 PRIMARY KEY)', 'running', \
         ARRAY[77]::INT8[]);\n"
    } else {
        ""
    };
    let first = format!(
        "CREATE TABLE users (id INT8 PRIMARY KEY);\n{job_sql}-- @UNDO\nDROP TABLE users;\n"
    );
    dir_with(&[
        ("1_users.sql", first.as_bytes()),
        (
            "2_email.sql",
            b"ALTER TABLE users ADD COLUMN email TEXT;\n-- @UNDO\nALTER TABLE users DROP COLUMN email;\n",
        ),
    ])
}

fn cmd_on(url: &str, dir: &Path) -> Command {
    let mut cmd = fixtures::cmd(url, dir, "cut-test", "10s");
    cmd.env("MIGRATE_JOB_WAIT_TIMEOUT", "30s");
    cmd
}

fn proxy() -> Proxy {
    Proxy::start(([127, 0, 0, 1], dressed_server().port()).into())
}

/// The number of the server's message, on the migration connection (the first), that is
/// COMMIT's reply to migration 1's transaction: read from `migrate --target 1` on a twin
/// database through a proxy without faults, where only the closing of the prepared ledger
/// statements (CloseComplete, `3`) follows that reply. Everything the run sends before it is
/// the same on the database under test.
fn commit_reply(gate: Gate, dir: &Path) -> u64 {
    let twin = dressed_server().fresh("cut_twin", gate, false);
    let p = proxy();
    run(cmd_on(&p.url(&twin.url), dir).args(["migrate", "--target", "1"])).expect_code(0);
    let stats = p.stats();
    let tags = stats
        .conn(1)
        .expect("the migration connection")
        .tags(Dir::ServerToClient);
    // `SET LOCAL statement_timeout = 0`, then COMMIT: CommandComplete and ReadyForQuery each.
    let closes = tags.trim_end_matches("3Z");
    assert!(closes.ends_with("CZCZ"), "{tags}");
    closes.len() as u64 - 1
}

/// `migrate` on `d` in the background, its migration connection cut at migration 1's COMMIT
/// reply; returns the run and the proxy (alive until the run ends).
fn migrate_cut_at_commit(d: &Dressed, gate: Gate, dir: &Path) -> (Background, Proxy, FaultId) {
    let at = commit_reply(gate, dir);
    let p = proxy();
    let id = p.arm_once(Fault::CutAt {
        dir: Dir::ServerToClient,
        message: at,
        conn: ConnMatch::Nth(1),
    });
    let bg = Background::spawn(cmd_on(&p.url(&d.url), dir).args(["migrate"]));
    (bg, p, id)
}

/// Cuts at migration 1's COMMIT, waits until the run waits for job 404, then ends the job
/// with `status`.
fn cut_then_end_job(tag: &str, status: &str) -> (Dressed, Output) {
    let d = dressed_server().fresh(tag, Gate::Readable, false);
    let dir = set(true);
    let (bg, p, id) = migrate_cut_at_commit(&d, Gate::Readable, dir.path());
    wait_until(Duration::from_secs(30), "job.waiting for job 404", || {
        bg.output(-1)
            .events_named("job.waiting")
            .iter()
            .any(|e| field(e, "job_id").as_i64() == Some(404))
    });
    // Waiting on the new connection: the old one was cut once, after COMMIT committed.
    assert_eq!(p.fired(id), 1);
    assert_eq!(ledger_rows(&d.admin()), "1:applied");
    psql(
        &d.admin_url,
        &format!(
            "UPDATE crdb_internal.jobs SET status = '{status}', \
             error = CASE WHEN '{status}' = 'failed' THEN 'validation failed' END \
             WHERE job_id = 404"
        ),
    );
    let out = bg.wait(Duration::from_secs(60));
    (d, out)
}

#[test]
fn a_job_that_fails_after_a_cut_commit_marks_the_version_dirty() {
    let (d, out) = cut_then_end_job("cut_failed", "failed");
    out.expect_code(31);
    assert_eq!(ledger_rows(&d.admin()), "1:dirty");
    assert!(
        !column_exists(&d.admin(), "users", "email"),
        "stopped there"
    );
    for needle in ["migration 1 ", "job 404", "ended failed", "SHOW JOB 404"] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    let dirty = out.events_named("migration.dirty");
    assert_eq!(dirty.len(), 1, "{}", out.stdout);
    assert_eq!(field(&dirty[0], "version").as_i64(), Some(1));
}

#[test]
fn a_job_that_succeeds_after_a_cut_commit_lets_the_run_go_on() {
    let (d, out) = cut_then_end_job("cut_succeeded", "succeeded");
    out.expect_code(0);
    assert_eq!(ledger_rows(&d.admin()), "1:applied,2:applied");
    assert!(column_exists(&d.admin(), "users", "email"), "went on");
    assert!(out.events_named("migration.dirty").is_empty());
    assert_eq!(out.events_named("job.done").len(), 1, "{}", out.stdout);
    // The step's jobs were asked for whatever their status, once reconnected.
    let log = dressed_server().statements(&d.name);
    assert!(
        !sent(
            &log,
            "created::TIMESTAMPTZ >= now() - INTERVAL '1 millisecond'"
        )
        .is_empty(),
        "{log:#?}"
    );
}

#[test]
fn jobs_that_cannot_be_listed_after_a_cut_commit_mark_the_version_dirty() {
    // Revoked internals, and no SHOW JOBS on the dressed server: no job can be listed.
    let d = dressed_server().fresh("cut_unlisted", Gate::Revoked, true);
    let dir = set(false);
    let (bg, p, id) = migrate_cut_at_commit(&d, Gate::Revoked, dir.path());
    let out = bg.wait(Duration::from_secs(60));
    out.expect_code(31);
    assert_eq!(p.fired(id), 1);
    assert_eq!(ledger_rows(&d.admin()), "1:dirty");
    assert!(
        table_exists(&d.admin(), "users"),
        "the transaction committed"
    );
    for needle in ["migration 1 ", "could not be checked", "cannot be listed"] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
}

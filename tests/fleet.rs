//! A fleet is many runs: one process migrating many targets (databases, or schemas of one
//! database), each target a run of its own with its own ledger, lease and decisions.

mod support;

use crdb_migrate::{Config, Goal, Run};
use support::dressed::{Gate, add_job, dressed_server};
use support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn users_set() -> tempfile::TempDir {
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

/// Two runs in one process against two CockroachDB-like databases: the first is a default
/// v26.1 whose `crdb_internal` refuses us (and has no `SHOW JOBS`), the second a v25.4 whose
/// `crdb_internal` is readable and lists a paused job on `users`. What the first learnt must
/// not silence the second's listing: it sees the job and refuses (32).
#[test]
fn two_runs_in_one_process_each_decide_for_themselves_how_to_list_jobs() {
    let server = dressed_server();
    let gated = server.fresh("fleet_gated", Gate::Revoked, true);
    let readable = server.fresh("fleet_readable", Gate::Readable, false);
    let dir = users_set();
    let rt = runtime();
    let run = |url: &str, goal| Run::new(Config::new(Some(url.into()), dir.path()), goal);
    let first = rt.block_on(run(&readable.url, Goal::Up(Some(1))).run());
    assert!(first.result.is_ok(), "{:?}", first.result);
    add_job(&readable.admin_url, 404, "paused", "users", 57, "postgres");

    let gated_run = rt.block_on(run(&gated.url, Goal::Up(None)).run());
    assert!(gated_run.result.is_ok(), "{:?}", gated_run.result);
    assert_eq!(gated_run.report.versions, vec![1, 2]);
    let readable_run = rt.block_on(run(&readable.url, Goal::Up(None)).run());
    let e = readable_run
        .result
        .expect_err("the paused job was not seen");
    assert_eq!(e.exit().code(), 32, "{e}");
    assert!(e.to_string().contains("SHOW JOB 404"), "{e}");
}

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

// ---------------------------------------------------------------------------------------------
// The binary over many targets
// ---------------------------------------------------------------------------------------------

/// A database holding `n` tenant schemas `t0..t{n-1}` and `public.effects`, the side-effect
/// table every migration writes its (schema, version) to.
fn tenants(tag: &str, n: usize) -> (TestDb, Vec<String>) {
    let db = fresh_db(tag);
    let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let mut sql = String::from("CREATE TABLE public.effects (tenant TEXT, version INT);\n");
    for t in &names {
        sql.push_str(&format!("CREATE SCHEMA {t};\n"));
    }
    psql(&db.url, &sql);
    (db, names)
}

/// Migrations 1..=n, each a table of its own in the tenant's schema and a row in
/// `public.effects`; `extra(v)` is added to migration v.
fn tenant_set(n: i64, extra: impl Fn(i64) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        let body = format!(
            "CREATE TABLE m_{v} (id INT);\n\
             INSERT INTO public.effects VALUES (current_schema(), {v});\n{}\n\
             -- @UNDO\nDROP TABLE m_{v};\n\
             DELETE FROM public.effects WHERE tenant = current_schema() AND version = {v};\n",
            extra(v)
        );
        std::fs::write(dir.path().join(format!("{v}_m{v}.sql")), body).expect("write");
    }
    dir
}

/// `db`'s URL with a password and `options=-c search_path={target}`: schema-per-tenant.
fn schema_url(db: &TestDb) -> String {
    format!(
        "{}&options=-c%20search_path%3D{{target}}",
        db.url.replacen(
            "postgresql://postgres@",
            "postgresql://postgres:s3cret-pw@",
            1
        )
    )
}

fn targets_file(lines: &[&str]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("targets file");
    std::io::Write::write_all(&mut f, lines.join("\n").as_bytes()).expect("write targets");
    f
}

/// The binary over the targets of `file` with `DATABASE_URL` = `url`.
fn fleet_cmd(url: &str, dir: &std::path::Path, file: &std::path::Path) -> std::process::Command {
    let mut cmd = bin_at(url, dir);
    cmd.env("MIGRATE_TARGETS_FILE", file)
        .env("MIGRATE_HOLDER", "fleet-test")
        .env("MIGRATE_WAIT_TIMEOUT", "5s");
    cmd
}

/// How many times each (tenant, version) ran: `tenant:version:count`, sorted.
fn effects(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(tenant || ':' || version || ':' || n, ',' ORDER BY tenant, version), '') \
           FROM (SELECT tenant, version, count(*) AS n FROM public.effects GROUP BY 1, 2) e",
    )
}

fn expected_effects(names: &[String], versions: i64) -> String {
    let mut names = names.to_vec();
    names.sort();
    let mut out = Vec::new();
    for t in &names {
        for v in 1..=versions {
            out.push(format!("{t}:{v}:1"));
        }
    }
    out.join(",")
}

fn termination(out_dir: &tempfile::TempDir) -> serde_json::Value {
    let text = std::fs::read_to_string(out_dir.path().join("termination")).expect("message");
    assert!(text.len() <= 4096, "{} bytes", text.len());
    serde_json::from_str(&text).expect("termination json")
}

#[test]
fn schema_per_tenant_targets_from_a_file_each_migrate_once_and_a_rerun_is_a_no_op() {
    let (db, names) = tenants("fleet_schemas", 5);
    let dir = tenant_set(3, |_| String::new());
    let mut lines: Vec<&str> = vec!["# tenants", ""];
    lines.extend(names.iter().map(|s| s.as_str()));
    lines.push("  ");
    let file = targets_file(&lines);
    let url = schema_url(&db);
    let term = tempfile::tempdir().expect("tempdir");
    let out = run(fleet_cmd(&url, dir.path(), file.path())
        .env("MIGRATE_TERMINATION_LOG", term.path().join("termination")));
    out.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 3));
    // Each schema has its own ledger.
    for t in &names {
        let v = psql(
            &db.url,
            &format!("SELECT string_agg(version::text, ',' ORDER BY version) FROM {t}._migrations"),
        );
        assert_eq!(v, "1,2,3", "{t}");
    }
    let finished = out.events_named("fleet.finished");
    assert_eq!(finished.len(), 1, "{}", out.stdout);
    assert_eq!(field(&finished[0], "applied").as_u64(), Some(5));
    assert_eq!(field(&finished[0], "total").as_u64(), Some(5));
    // Every event of a target's run names it, and no line holds the password.
    let applied = out.events_named("migration.applied");
    assert_eq!(applied.len(), 15, "{}", out.stdout);
    for e in &applied {
        let t = field(e, "target").as_str().unwrap_or("");
        assert!(names.iter().any(|n| n == t), "{e}");
    }
    assert!(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"));
    let message = termination(&term);
    assert_eq!(message["targets"]["applied"], 5, "{message}");
    assert_eq!(message["exit_code"], 0);

    // A rerun: every target at the goal, a no-op each.
    let again = run(&mut fleet_cmd(&url, dir.path(), file.path()));
    again.expect_code(0);
    assert_eq!(effects(&db), expected_effects(&names, 3));
    let finished = again.events_named("fleet.finished");
    assert_eq!(
        field(&finished[0], "up_to_date").as_u64(),
        Some(5),
        "{}",
        again.stdout
    );
    let nothing = again.events_named("run.nothing_to_do");
    assert_eq!(nothing.len(), 5);
    for e in &nothing {
        assert!(
            field(e, "target")
                .as_str()
                .is_some_and(|t| t.starts_with('t')),
            "{e}"
        );
        assert_eq!(field(e, "target_version").as_i64(), Some(3), "{e}");
    }
}

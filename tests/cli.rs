//! Integration tests through the real binary against a real server: every command, the exit codes
//! 0/10/20/30/32, a complete create/migrate/rollback session, a failing migration in the middle of
//! a set, adoption of a three-column ledger, a bad-input corpus, and a 320-migration set applied,
//! rolled back to 0 and re-applied with its schema compared to plain psql.

mod support;

use std::path::Path;

use support::fixtures::versions;
use support::*;

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    run(bin_at(&db.url, dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(args))
}

const USERS: &str =
    "CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL);\n-- @UNDO\nDROP TABLE users;\n";
const AGE: &str =
    "ALTER TABLE users ADD COLUMN age INT;\n-- @UNDO\nALTER TABLE users DROP COLUMN age;\n";
const POSTS: &str =
    "CREATE TABLE posts (id INT PRIMARY KEY, user_id INT);\n-- @UNDO\nDROP TABLE posts;\n";

#[test]
fn the_quick_start_from_create_to_rollback() {
    let db = fresh_db("complete_example");
    let dir = tempfile::tempdir().expect("tempdir");
    // Create migrations through `create`, as a user would.
    let made = crdb(
        &db,
        dir.path(),
        &[
            "create",
            "create users table",
            "--up",
            "CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);",
            "--undo",
            "DROP TABLE users;",
        ],
    );
    made.expect_code(0);
    let first = made.stdout.trim().to_string();
    assert!(first.ends_with("_create_users_table.sql"), "{first}");
    let second = crdb(
        &db,
        dir.path(),
        &[
            "create",
            "add age column",
            "--up",
            "ALTER TABLE users ADD COLUMN age INT;",
            "--undo",
            "ALTER TABLE users DROP COLUMN age;",
        ],
    );
    second.expect_code(0);
    let second_path = second.stdout.trim().to_string();
    assert_ne!(
        first, second_path,
        "a clash within one second takes the next second"
    );
    // Both files load, in order, and `verify` is happy.
    crdb(&db, dir.path(), &["verify"]).expect_code(0);
    // Migrate (the default command) applies both.
    let out = crdb(&db, dir.path(), &[]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 2);
    assert!(table_exists(&db, "users"));
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'age'"
        ),
        "1"
    );
    // Status shows both applied, with applied_at and matching checksums.
    let status = crdb(&db, dir.path(), &["status", "--json"]);
    status.expect_code(0);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).expect("status json");
    let migrations = s["migrations"].as_array().expect("migrations");
    assert_eq!(migrations.len(), 2);
    for m in migrations {
        assert_eq!(m["state"], "applied");
        assert_eq!(m["checksum_matches"], true);
        assert!(m["applied_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let current = s["current_version"].as_i64().expect("current");
    // Rollback the last one.
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.rolled_back").len(), 1);
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'age'"
        ),
        "0"
    );
    let s: serde_json::Value =
        serde_json::from_str(&crdb(&db, dir.path(), &["status", "--json"]).stdout).expect("json");
    assert!(s["current_version"].as_i64() < Some(current));
    assert_eq!(s["pending"].as_array().map(Vec::len), Some(1));
    // Migrate again, then roll everything back with --target 0.
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    crdb(&db, dir.path(), &["rollback", "--target", "0"]).expect_code(0);
    assert!(!table_exists(&db, "users"));
    assert_eq!(versions(&db), "");
}

#[test]
fn migrate_is_idempotent_and_respects_the_target() {
    let db = fresh_db("target");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", AGE.as_bytes()),
        ("3_posts.sql", POSTS.as_bytes()),
    ]);
    // The command's option wins over the variable.
    run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_TARGET_VERSION", "3")
        .args(["migrate", "--target", "2"]))
    .expect_code(0);
    assert_eq!(versions(&db), "1,2");
    // The variable works as the option does.
    let out = run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_TARGET_VERSION", "3"));
    out.expect_code(0);
    assert_eq!(versions(&db), "1,2,3");
    // A no-op run applies nothing and takes no lease.
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert!(!out.has_event("lease.acquired"));
    assert!(!out.has_event("migration.applied"));
    // A target below the current version is refused: use rollback.
    let out = crdb(&db, dir.path(), &["migrate", "--target", "1"]);
    out.expect_code(20);
    assert!(out.stderr.contains("rollback"), "{}", out.stderr);
    assert_eq!(versions(&db), "1,2,3");
}

#[test]
fn plan_shows_what_migrate_would_do_without_doing_it() {
    let db = fresh_db("plan");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", b"ALTER TABLE users ADD COLUMN age INT;\n"),
    ]);
    let out = crdb(&db, dir.path(), &["plan", "--json"]);
    out.expect_code(0);
    let p: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan json");
    let steps = p["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["direction"], "up");
    assert_eq!(steps[1]["no_transaction"], false);
    assert!(
        steps[1]["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["rule"] == "irreversible"))
    );
    assert!(!table_exists(&db, "users"), "plan changed nothing");
    assert!(!table_exists(&db, "_migrations"), "plan created nothing");
    let text = crdb(&db, dir.path(), &["plan"]);
    text.expect_code(0);
    assert!(text.stdout.contains("apply 1 users"), "{}", text.stdout);
}

#[test]
fn a_failing_migration_in_the_middle_is_rolled_back_and_later_ones_not_tried() {
    let db = fresh_db("failing_middle");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        (
            "2_broken.sql",
            b"CREATE TABLE half (id INT);\nINSERT INTO no_such_table VALUES (1);\n",
        ),
        ("3_posts.sql", POSTS.as_bytes()),
    ]);
    let out = crdb(&db, dir.path(), &[]);
    out.expect_code(30);
    assert!(out.stderr.contains("migration 2"), "{}", out.stderr);
    assert!(out.stderr.contains("2_broken.sql"), "{}", out.stderr);
    assert!(out.stderr.contains("42P01"), "{}", out.stderr);
    assert!(table_exists(&db, "users"));
    assert!(
        !table_exists(&db, "half"),
        "the failed migration was rolled back"
    );
    assert!(
        !table_exists(&db, "posts"),
        "later migrations were not tried"
    );
    assert_eq!(versions(&db), "1");
    let failed = out.events_named("migration.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["version"], 2);
    let finished = out.events_named("run.finished");
    assert_eq!(finished[0]["exit_code"], 30);
    assert_eq!(finished[0]["applied"], 1);
    // The lease was released: the next run does not wait for it.
    let lease = psql(
        &db.url,
        "SELECT coalesce(holder, 'free') FROM _migrations_lease",
    );
    assert_eq!(lease, "free");
}

#[test]
fn repair_adopts_a_three_column_ledger_too() {
    let db = fresh_db("adopt_repair");
    psql(
        &db.url,
        "CREATE TABLE _migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO _migrations (version, description) VALUES (1, 'users');",
    );
    let dir = dir_with(&[("001_users.sql", USERS.as_bytes())]);
    crdb(
        &db,
        dir.path(),
        &["repair", "--version", "1", "--accept-checksum"],
    )
    .expect_code(0);
    let status = crdb(&db, dir.path(), &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(s["migrations"][0]["checksum_matches"], true);
}

#[test]
fn wait_for_version_zero_is_reached_at_once() {
    let db = fresh_db("wait_zero");
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let out = run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "1s")
        .args(["wait", "--version", "0"]));
    out.expect_code(0);
}

#[test]
fn a_three_column_ledger_is_adopted() {
    let db = fresh_db("adopt");
    // What a hand-written three-column client leaves behind.
    psql(
        &db.url,
        "CREATE TABLE _migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL);
         ALTER TABLE users ADD COLUMN age INT;
         INSERT INTO _migrations (version, description) VALUES (1, 'users'), (2, 'age');",
    );
    let dir = dir_with(&[
        ("001_users.sql", USERS.as_bytes()),
        ("002_age.sql", AGE.as_bytes()),
        // A version in `create`'s timestamp style does not fit a three-column ledger's INTEGER column.
        ("20240101000000_posts.sql", POSTS.as_bytes()),
    ]);
    let status = crdb(&db, dir.path(), &["status", "--json"]);
    status.expect_code(0);
    // `wait` for a version the three-column ledger already holds needs no adoption.
    crdb(&db, dir.path(), &["wait", "--version", "2"]).expect_code(0);
    let out = crdb(&db, dir.path(), &[]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 1);
    assert_eq!(versions(&db), "1,2,20240101000000");
    assert_eq!(
        psql(
            &db.url,
            "SELECT data_type FROM information_schema.columns WHERE table_name = '_migrations' AND column_name = 'version'"
        ),
        "bigint"
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = '_migrations' AND column_name IN ('checksum','duration_ms','applied_by','fence','status','statements_done')"
        ),
        "6"
    );
    // Old rows kept, with NULL checksums that do not count as drift.
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM _migrations WHERE checksum IS NULL"
        ),
        "2"
    );
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    // Rollback works through adopted rows.
    crdb(&db, dir.path(), &["rollback", "--count", "2"]).expect_code(0);
    assert_eq!(versions(&db), "1");
}

#[test]
fn the_database_disagreeing_with_the_files_is_exit_32() {
    let db = fresh_db("disagree");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", AGE.as_bytes()),
    ]);
    crdb(&db, dir.path(), &[]).expect_code(0);
    // An applied file edited afterwards.
    std::fs::write(
        dir.path().join("2_age.sql"),
        "ALTER TABLE users ADD COLUMN age BIGINT;\n-- @UNDO\nALTER TABLE users DROP COLUMN age;\n",
    )
    .expect("edit");
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(32);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
    assert!(out.stderr.contains("checksum"), "{}", out.stderr);
    // A CRLF copy of the original is not drift.
    std::fs::write(dir.path().join("2_age.sql"), AGE.replace('\n', "\r\n")).expect("crlf");
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    // An applied version missing from the image.
    std::fs::remove_file(dir.path().join("2_age.sql")).expect("rm");
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(32);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
    let allowed = run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_ALLOW_NEWER_SCHEMA", "true"));
    allowed.expect_code(0);
    // Status reports the same without failing.
    let s: serde_json::Value =
        serde_json::from_str(&crdb(&db, dir.path(), &["status", "--json"]).stdout).expect("json");
    assert_eq!(s["missing_files"], serde_json::json!([2]));
    assert_eq!(versions(&db), "1,2");
}

#[test]
fn rollback_checks_every_undo_before_starting() {
    let db = fresh_db("irreversible");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", b"ALTER TABLE users ADD COLUMN age INT;\n"),
        ("3_posts.sql", POSTS.as_bytes()),
    ]);
    crdb(&db, dir.path(), &[]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback", "--count", "2"]);
    out.expect_code(20);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
    assert!(out.stderr.contains("irreversible"), "{}", out.stderr);
    assert_eq!(versions(&db), "1,2,3", "nothing was undone");
    assert!(table_exists(&db, "posts"));
    crdb(&db, dir.path(), &["rollback", "--count", "1"]).expect_code(0);
    assert_eq!(versions(&db), "1,2");
}

#[test]
fn environment_sub_directory_joins_the_set() {
    let db = fresh_db("environment");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("3_posts.sql", POSTS.as_bytes()),
        (
            "staging/2_seed.sql",
            b"INSERT INTO users VALUES (1, 'staging');\n-- @UNDO\nDELETE FROM users WHERE id = 1;\n",
        ),
    ]);
    run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("ENVIRONMENT", "staging"))
    .expect_code(0);
    assert_eq!(versions(&db), "1,2,3");
    assert_eq!(psql(&db.url, "SELECT name FROM users"), "staging");
}

#[test]
fn unreachable_database_is_exit_10_and_the_termination_message_is_json() {
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let term = tempfile::NamedTempFile::new().expect("tmp");
    let port = free_port();
    let out = run(bin()
        .env(
            "DATABASE_URL",
            format!("postgresql://u:s3cret-pw@127.0.0.1:{port}/db?sslmode=disable"),
        )
        .env("MIGRATIONS_DIR", dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "1s")
        .env("MIGRATE_TERMINATION_LOG", term.path()));
    out.expect_code(10);
    assert!(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"));
    let msg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(term.path()).expect("read")).expect("json");
    assert_eq!(msg["exit_code"], 10);
    assert_eq!(msg["applied"], 0);
    assert!(msg["duration_ms"].is_u64());
    assert!(msg["reason"].is_string());
    assert!(!msg.to_string().contains("s3cret-pw"));
}

#[test]
fn text_logs_for_humans() {
    let db = fresh_db("text_logs");
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let out = run(bin()
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir.path())
        .env("LOG_FORMAT", "text"));
    out.expect_code(0);
    assert!(out.events().is_empty(), "no JSON lines: {}", out.stdout);
    assert!(out.stdout.contains("migration applied"), "{}", out.stdout);
    // JSON lines carry timestamp, level, message, event and the migration's fields.
    let db = fresh_db("json_logs");
    let out = crdb(&db, dir.path(), &[]);
    let applied = &out.events_named("migration.applied")[0];
    for key in [
        "timestamp",
        "level",
        "message",
        "version",
        "description",
        "checksum",
        "duration_ms",
    ] {
        assert!(applied.get(key).is_some(), "{key} missing in {applied}");
    }
    assert!(
        applied["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
}

/// One broken input: files (or none), extra environment, and a word the error must contain.
struct Broken {
    name: &'static str,
    files: Vec<(&'static str, &'static [u8])>,
    env: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
    expect: &'static str,
}

#[test]
fn bad_input_corpus_is_exit_20_naming_the_culprit_and_touches_nothing() {
    let ok: (&str, &[u8]) = ("1_users.sql", USERS.as_bytes());
    let corpus = vec![
        Broken {
            name: "bad file name",
            files: vec![ok, ("2-age.sql", b"SELECT 1;")],
            env: vec![],
            args: vec![],
            expect: "2-age.sql",
        },
        Broken {
            name: "uppercase description",
            files: vec![ok, ("2_Age.sql", b"SELECT 1;")],
            env: vec![],
            args: vec![],
            expect: "2_Age.sql",
        },
        Broken {
            name: "version zero",
            files: vec![ok, ("0_zero.sql", b"SELECT 1;")],
            env: vec![],
            args: vec![],
            expect: "0_zero.sql",
        },
        Broken {
            name: "version beyond INT8",
            files: vec![ok, ("99999999999999999999_big.sql", b"SELECT 1;")],
            env: vec![],
            args: vec![],
            expect: "99999999999999999999_big.sql",
        },
        Broken {
            name: "duplicate version",
            files: vec![ok, ("01_again.sql", b"SELECT 1;")],
            env: vec![],
            args: vec![],
            expect: "01_again.sql",
        },
        Broken {
            name: "not UTF-8",
            files: vec![ok, ("2_bin.sql", b"SELECT '\xff\xfe';")],
            env: vec![],
            args: vec![],
            expect: "2_bin.sql",
        },
        Broken {
            name: "two undo markers",
            files: vec![
                ok,
                (
                    "2_two.sql",
                    b"SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @UNDO\nSELECT 3;\n",
                ),
            ],
            env: vec![],
            args: vec![],
            expect: "2_two.sql",
        },
        Broken {
            name: "unknown directive",
            files: vec![ok, ("2_dir.sql", b"-- @NO_TRANSACTIONS\nSELECT 1;\n")],
            env: vec![],
            args: vec![],
            expect: "2_dir.sql",
        },
        Broken {
            name: "directive after SQL",
            files: vec![
                ok,
                ("2_late.sql", b"SELECT 1;\n-- @NO_TRANSACTION\nSELECT 2;\n"),
            ],
            env: vec![],
            args: vec![],
            expect: "2_late.sql",
        },
        // An empty forward section is a valid down-only migration; the
        // placeholder `create` writes is still refused.
        Broken {
            name: "forward placeholder left in",
            files: vec![
                ok,
                (
                    "2_empty.sql",
                    b"-- write the forward SQL here (this file does not load until a statement replaces this line)\n-- @UNDO\nSELECT 1;\n",
                ),
            ],
            env: vec![],
            args: vec![],
            expect: "2_empty.sql",
        },
        Broken {
            name: "bad directive value",
            files: vec![ok, ("2_slow.sql", b"-- @LOCK_TIMEOUT soon\nSELECT 1;\n")],
            env: vec![],
            args: vec![],
            expect: "2_slow.sql:1:",
        },
        Broken {
            name: "repeat outside no-transaction",
            files: vec![
                ok,
                ("2_rep.sql", b"-- @REPEAT_UNTIL_ZERO\nDELETE FROM users;\n"),
            ],
            env: vec![],
            args: vec![],
            expect: "2_rep.sql",
        },
        Broken {
            name: "transaction control",
            files: vec![
                ok,
                (
                    "2_commit.sql",
                    b"CREATE TABLE c (id INT);\nCOMMIT;\nCREATE TABLE d (id INT);\n",
                ),
            ],
            env: vec![],
            args: vec![],
            expect: "2_commit.sql",
        },
        Broken {
            name: "undo placeholder left in",
            files: vec![
                ok,
                (
                    "2_todo.sql",
                    b"CREATE TABLE c (id INT);\n-- @UNDO\n-- write the undo SQL here\n",
                ),
            ],
            env: vec![],
            args: vec![],
            expect: "2_todo.sql",
        },
        Broken {
            name: "duration beyond a week",
            files: vec![ok],
            env: vec![("MIGRATE_LEASE_TTL", "10000000000h")],
            args: vec![],
            expect: "MIGRATE_LEASE_TTL",
        },
        Broken {
            name: "bad wait timeout",
            files: vec![ok],
            env: vec![("MIGRATE_WAIT_TIMEOUT", "abc")],
            args: vec![],
            expect: "MIGRATE_WAIT_TIMEOUT",
        },
        Broken {
            name: "bad lease ttl",
            files: vec![ok],
            env: vec![("MIGRATE_LEASE_TTL", "10 parsecs")],
            args: vec![],
            expect: "MIGRATE_LEASE_TTL",
        },
        Broken {
            name: "bad table name",
            files: vec![ok],
            env: vec![("MIGRATE_TABLE", "drop table x;--")],
            args: vec![],
            expect: "MIGRATE_TABLE",
        },
        Broken {
            name: "bad log format",
            files: vec![ok],
            env: vec![("LOG_FORMAT", "xml")],
            args: vec![],
            expect: "LOG_FORMAT",
        },
        Broken {
            name: "bad boolean",
            files: vec![ok],
            env: vec![("MIGRATE_ALLOW_NEWER_SCHEMA", "maybe")],
            args: vec![],
            expect: "MIGRATE_ALLOW_NEWER_SCHEMA",
        },
        Broken {
            name: "bad target",
            files: vec![ok],
            env: vec![("MIGRATE_TARGET_VERSION", "latest")],
            args: vec![],
            expect: "MIGRATE_TARGET_VERSION",
        },
        Broken {
            name: "bad --target",
            files: vec![ok],
            env: vec![],
            args: vec!["migrate", "--target", "latest"],
            expect: "--target",
        },
        Broken {
            name: "target not a file",
            files: vec![ok],
            env: vec![],
            args: vec!["migrate", "--target", "7"],
            expect: "7",
        },
        Broken {
            name: "missing migrations dir",
            files: vec![],
            env: vec![("MIGRATIONS_DIR", "/nonexistent/migrations")],
            args: vec![],
            expect: "/nonexistent/migrations",
        },
        Broken {
            name: "unknown command-line flag",
            files: vec![ok],
            env: vec![],
            args: vec!["migrate", "--frobnicate"],
            expect: "frobnicate",
        },
    ];
    assert!(corpus.len() >= 12);
    for case in corpus {
        let db = fresh_db("bad_input");
        let dir = dir_with(&case.files);
        let mut cmd = bin();
        cmd.env("DATABASE_URL", &db.url)
            .env("MIGRATIONS_DIR", dir.path())
            .args(&case.args);
        for (k, v) in &case.env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert_eq!(
            out.code, 20,
            "{}: {}\n{}",
            case.name, out.stdout, out.stderr
        );
        assert!(
            out.stderr.contains(case.expect),
            "{}: error does not name {:?}:\n{}",
            case.name,
            case.expect,
            out.stderr
        );
        assert!(
            !table_exists(&db, "_migrations"),
            "{}: database touched",
            case.name
        );
        assert!(
            !table_exists(&db, "users"),
            "{}: database touched",
            case.name
        );
    }
}

#[test]
fn every_problem_of_a_set_is_reported_at_once() {
    let dir = dir_with(&[
        ("1_ok.sql", b"SELECT 1;"),
        ("x_bad.sql", b"SELECT 1;"),
        ("2_two.sql", b"SELECT 1;\n-- @UNDO\n-- @UNDO\n"),
        ("3_bin.sql", b"\xff"),
    ]);
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"));
    out.expect_code(20);
    for name in ["x_bad.sql", "2_two.sql", "3_bin.sql"] {
        assert!(out.stderr.contains(name), "{name} missing:\n{}", out.stderr);
    }
}

#[test]
fn database_url_problems_are_exit_20_without_the_password() {
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let missing = run(bin().env("MIGRATIONS_DIR", dir.path()));
    missing.expect_code(20);
    assert!(
        missing.stderr.contains("DATABASE_URL"),
        "{}",
        missing.stderr
    );
    for url in [
        "postgresql://user:hunter2-secret@127.0.0.1:1/db?sslmode=bogus",
        "mysql://user:hunter2-secret@127.0.0.1/db",
        "postgresql://user:hunter2-secret@127.0.0.1:1/db?frobnicate=1",
    ] {
        let out = run(bin()
            .env("MIGRATIONS_DIR", dir.path())
            .env("DATABASE_URL", url));
        out.expect_code(20);
        assert!(out.stderr.contains("DATABASE_URL"), "{url}: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2-secret") && !out.stdout.contains("hunter2-secret"));
    }
    // Unencoded '/', '?' or '@' in a password cut the URL in the wrong place: the error must
    // not quote the pieces, in the logs, on stderr or in the termination message.
    for url in [
        "postgresql://u:hunter2/secret9@127.0.0.1:1/db",
        "postgresql://u:1/hunter2/secret9@127.0.0.1:1/db",
        "postgresql://u:hunter2?secret9@127.0.0.1/db",
        "postgresql://u:hunter2?secret9=x@127.0.0.1/db",
    ] {
        let term = tempfile::NamedTempFile::new().expect("tmp");
        let out = run(bin()
            .env("MIGRATIONS_DIR", dir.path())
            .env("DATABASE_URL", url)
            .env("MIGRATE_TERMINATION_LOG", term.path()));
        out.expect_code(20);
        let message = std::fs::read_to_string(term.path()).expect("termination message");
        for piece in ["hunter2", "secret9"] {
            for text in [&out.stdout, &out.stderr, &message] {
                assert!(!text.contains(piece), "{url}: {piece} leaked: {text}");
            }
        }
    }
}

#[test]
fn verify_needs_no_database_and_warns() {
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", b"ALTER TABLE users ADD COLUMN age INT;\n"),
    ]);
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"));
    out.expect_code(0);
    assert!(out.stdout.contains("irreversible"), "{}", out.stdout);
    assert!(out.stdout.contains("2_age.sql"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------
// A realistic set of 320 migrations.
// ---------------------------------------------------------------------------------------------

/// Generates a set in the shape of a long-lived application: tables created, columns added,
/// indexes built, data written, views defined, and some of it dropped again later.
fn realistic_set(n: usize) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut tables = 0usize;
    for i in 1..=n {
        let (up, down) = match i % 8 {
            1 => {
                tables += 1;
                let t = tables;
                (
                    format!(
                        "CREATE TABLE t{t} (\n    id BIGINT PRIMARY KEY,\n    name TEXT NOT NULL DEFAULT 'x;y',\n    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n);\nCOMMENT ON TABLE t{t} IS 'table {t}; made by migration {i}';"
                    ),
                    format!("DROP TABLE t{t};"),
                )
            }
            2 => (
                format!("ALTER TABLE t{tables} ADD COLUMN c{i} INT;"),
                format!("ALTER TABLE t{tables} DROP COLUMN c{i};"),
            ),
            3 => (
                format!("CREATE INDEX t{tables}_name_{i} ON t{tables} (name);"),
                format!("DROP INDEX t{tables}_name_{i};"),
            ),
            4 => (
                format!(
                    "INSERT INTO t{tables} (id, name) VALUES ({i}, 'it''s; row {i}'), ({}, E'tab\\there');",
                    i + 100000
                ),
                format!("DELETE FROM t{tables} WHERE id IN ({i}, {});", i + 100000),
            ),
            5 => (
                format!("CREATE VIEW v{i} AS SELECT id, name FROM t{tables} WHERE name <> ';';"),
                format!("DROP VIEW v{i};"),
            ),
            6 => (
                format!("ALTER TABLE t{tables} ADD COLUMN d{i} TEXT NOT NULL DEFAULT $$a;b$$;"),
                format!("ALTER TABLE t{tables} DROP COLUMN d{i};"),
            ),
            7 => (
                format!(
                    "CREATE TABLE link{i} (a BIGINT NOT NULL REFERENCES t{tables} (id), b TEXT);\nCREATE INDEX link{i}_a ON link{i} (a);"
                ),
                format!("DROP TABLE link{i};"),
            ),
            _ => (
                format!(
                    "/* a comment; with a semicolon */\nALTER TABLE t{tables} ALTER COLUMN name SET DEFAULT 'v{i}';"
                ),
                format!("ALTER TABLE t{tables} ALTER COLUMN name SET DEFAULT 'x;y';"),
            ),
        };
        out.push((format!("{:04}_step_{i}.sql", i), up, down));
    }
    out
}

fn schema_of(url: &str) -> String {
    psql(
        url,
        "SELECT string_agg(line, E'\\n' ORDER BY line) FROM (
            SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '-') AS line
              FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '\\_migrations%'
            UNION ALL
            SELECT 'index ' || tablename || ' ' || indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE '\\_migrations%'
         ) s",
    )
}

#[test]
fn three_hundred_twenty_migrations_up_down_up_match_psql() {
    let set = realistic_set(320);
    let files: Vec<(String, Vec<u8>)> = set
        .iter()
        .map(|(name, up, down)| {
            (
                name.clone(),
                format!("{up}\n-- @UNDO\n{down}\n").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let dir = dir_with(&refs);
    let db = fresh_db("big_set");
    let out = crdb(&db, dir.path(), &[]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 320);
    let after_up = schema_of(&db.url);
    // The same forward SQL through psql, in one session.
    let reference = fresh_db("big_set_psql");
    let script: String = set.iter().map(|(_, up, _)| format!("{up}\n")).collect();
    psql(&reference.url, &script);
    assert_eq!(after_up, schema_of(&reference.url));
    assert!(
        after_up.lines().count() > 400,
        "schema too small: {}",
        after_up.lines().count()
    );
    // Down to nothing.
    let out = crdb(&db, dir.path(), &["rollback", "--target", "0"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.rolled_back").len(), 320);
    assert_eq!(schema_of(&db.url), "");
    assert_eq!(versions(&db), "");
    // And up again.
    crdb(&db, dir.path(), &[]).expect_code(0);
    assert_eq!(schema_of(&db.url), after_up);
}

#[test]
fn a_usage_error_still_writes_the_termination_message() {
    let term = tempfile::NamedTempFile::new().expect("tmp");
    let out = run(bin()
        .env("MIGRATE_TERMINATION_LOG", term.path())
        .args(["rollback", "--count", "x"]));
    out.expect_code(20);
    let msg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(term.path()).expect("read")).expect("json");
    assert_eq!(msg["exit_code"], 20);
    assert_eq!(msg["reason"], "bad_input");
}

#[test]
fn verify_without_environment_checks_every_environment_directory() {
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("staging/2_seed.sql", b"SELECT 1;\n-- @UNDO\nSELECT 2;\n"),
        (
            "production/01_clash.sql",
            b"SELECT 1;\n-- @UNDO\nSELECT 2;\n",
        ),
    ]);
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"));
    out.expect_code(20);
    assert!(out.stderr.contains("01_clash.sql"), "{}", out.stderr);
    std::fs::remove_file(dir.path().join("production/01_clash.sql")).expect("rm");
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"));
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("2 migration file(s) OK"),
        "{}",
        out.stdout
    );
}

#[test]
fn rollback_count_beyond_what_is_applied_is_refused() {
    let db = fresh_db("rollback_count");
    let dir = dir_with(&[
        ("1_users.sql", USERS.as_bytes()),
        ("2_age.sql", AGE.as_bytes()),
    ]);
    crdb(&db, dir.path(), &[]).expect_code(0);
    for n in ["0", "3", "10"] {
        let out = crdb(&db, dir.path(), &["rollback", "--count", n]);
        out.expect_code(20);
        assert!(out.stderr.contains("--target 0"), "{}", out.stderr);
    }
    assert_eq!(versions(&db), "1,2", "nothing was undone");
}

#[test]
fn a_fifo_among_the_migrations_is_a_problem_not_a_hang() {
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let fifo = dir.path().join("2_fifo.sql");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let out = run_with_deadline(
        bin().env("MIGRATIONS_DIR", dir.path()).arg("verify"),
        std::time::Duration::from_secs(20),
    );
    out.expect_code(20);
    assert!(out.stderr.contains("2_fifo.sql"), "{}", out.stderr);
}

#[test]
fn create_picks_a_version_free_in_every_environment_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("staging")).expect("mkdir");
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let now = time::OffsetDateTime::now_utc();
    // Take this second and the next few in the environment directory.
    for s in 0..5 {
        let stamp = (now + time::Duration::seconds(s))
            .format(&format)
            .expect("fmt");
        std::fs::write(
            dir.path().join(format!("staging/{stamp}_s.sql")),
            "SELECT 1;\n-- @UNDO\nSELECT 2;\n",
        )
        .expect("write");
    }
    let out = run(bin().env("MIGRATIONS_DIR", dir.path()).args([
        "create",
        "add x",
        "--up",
        "SELECT 1;",
        "--undo",
        "SELECT 2;",
    ]));
    out.expect_code(0);
    let verify = run(bin()
        .env("MIGRATIONS_DIR", dir.path())
        .env("ENVIRONMENT", "staging")
        .arg("verify"));
    verify.expect_code(0);
}

/// The files are read while the connection is made: bad files still exit 20 at once, naming
/// the file, whatever the database does (here: nothing listens, and the wait would be 2 min),
/// and with a wrong password too (20, not 21).
#[test]
fn bad_files_win_over_a_database_being_waited_for() {
    let mut files: Vec<(String, Vec<u8>)> = (1..=299)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("CREATE TABLE t{i} (id INT);\n-- @UNDO\nDROP TABLE t{i};\n").into_bytes(),
            )
        })
        .collect();
    files.push((
        "300_bad.sql".into(),
        b"SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @UNDO\nSELECT 3;\n".to_vec(),
    ));
    let named: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let dir = dir_with(&named);
    let port = free_port();
    let started = std::time::Instant::now();
    let out = run_with_deadline(
        bin()
            .env(
                "DATABASE_URL",
                format!("postgresql://u@127.0.0.1:{port}/db?sslmode=disable"),
            )
            .env("MIGRATIONS_DIR", dir.path())
            .env("MIGRATE_WAIT_TIMEOUT", "120s"),
        std::time::Duration::from_secs(60),
    );
    out.expect_code(20);
    assert!(out.stderr.contains("300_bad.sql"), "{}", out.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bad files must not wait for the database"
    );

    let db = fresh_db("bad_files_wrong_password");
    // A role that does not exist: the server refuses it (exit 21 with good files).
    let (scheme, rest) = db.url.split_once("://").expect("url");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let wrong = format!("{scheme}://nobody_here:wrong@{host}");
    let out = run(bin_at(&wrong, dir.path()).env("MIGRATE_WAIT_TIMEOUT", "10s"));
    out.expect_code(20);
    assert!(out.stderr.contains("300_bad.sql"), "{}", out.stderr);
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM pg_tables WHERE tablename = '_migrations'"
        ),
        "0"
    );
    // Once the files are good, the connection's own error is the one reported.
    std::fs::remove_file(dir.path().join("300_bad.sql")).expect("rm");
    run(bin_at(&wrong, dir.path()).env("MIGRATE_WAIT_TIMEOUT", "10s")).expect_code(21);
}

/// `LOG_LEVEL` is a level or `target=level` directives, applied to every log line.
#[test]
fn log_level_filters_by_level_and_by_target() {
    let db = fresh_db("log_level");
    let dir = dir_with(&[("1_users.sql", USERS.as_bytes())]);
    let with = |level: &str| run(bin_at(&db.url, dir.path()).env("LOG_LEVEL", level));
    let quiet = with("warn");
    quiet.expect_code(0);
    assert!(!quiet.stdout.contains("run.finished"), "{}", quiet.stdout);
    assert_eq!(versions(&db), "1");
    let by_target = with("warn,crdb_migrate=info");
    by_target.expect_code(0);
    assert!(
        by_target.stdout.contains("\"event\":\"run.finished\""),
        "{}",
        by_target.stdout
    );
    let elsewhere = with("warn,tokio_postgres=info");
    elsewhere.expect_code(0);
    assert!(
        !elsewhere.stdout.contains("run.finished"),
        "{}",
        elsewhere.stdout
    );
    with("crdb_migrate=loud").expect_code(20);
}

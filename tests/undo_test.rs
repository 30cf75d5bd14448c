//! `test [--json] [--force]` through the binary against a real server: a good set passes,
//! known-bad undos of each kind are named (one that fails, one that leaves an object behind,
//! one that restores a different default), an irreversible file is listed and not failed, an
//! empty undo is checked, a database holding objects is refused unless forced, and the
//! project sets in tests/fixtures/real run through it.

mod support;

use std::path::Path;

use support::*;

fn crdb_test(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["test"];
    all.extend(args);
    run(bin_at(&db.url, dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(&all))
}

/// `test --json`'s report, and its verdicts in migration order.
fn report_of(out: &Output) -> (serde_json::Value, Vec<String>) {
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let verdicts = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| m["verdict"].as_str().unwrap_or("").to_string())
        .collect();
    (report, verdicts)
}

const GOOD: &[(&str, &[u8])] = &[
    (
        "20240101000000_users.sql",
        b"CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL DEFAULT 'x');\n-- @UNDO\nDROP TABLE users;\n",
    ),
    (
        "20240102000000_age.sql",
        b"ALTER TABLE users ADD COLUMN age INT;\nCREATE INDEX users_age ON users (age);\n-- @UNDO\nDROP INDEX users_age;\nALTER TABLE users DROP COLUMN age;\n",
    ),
    (
        "20240103000000_default.sql",
        b"ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y';\n-- @UNDO\nALTER TABLE users ALTER COLUMN name SET DEFAULT 'x';\n",
    ),
];

#[test]
fn a_good_set_passes_and_leaves_the_forward_state() {
    let db = fresh_db("undo_good");
    let dir = dir_with(GOOD);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(0);
    let (report, verdicts) = report_of(&out);
    assert_eq!(verdicts, ["ok", "ok", "ok"], "{report}");
    assert_eq!(report["failed"], 0);
    assert!(
        column_exists(&db, "users", "age"),
        "the forward state stays"
    );
    assert!(
        !table_exists(&db, "_migrations"),
        "test does not write the ledger"
    );
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the expected differences are in its catalog's words"
)]
fn bad_undos_of_each_kind_are_named_in_one_run() {
    let db = fresh_db("undo_bad");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_fails.sql",
            b"CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE no_such_table;\n",
        ),
        (
            "20240103000000_leaves.sql",
            b"CREATE TABLE b (id INT);\nCREATE INDEX b_id ON b (id);\n-- @UNDO\nDROP INDEX b_id;\n",
        ),
        (
            "20240104000000_default.sql",
            b"ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y';\n-- @UNDO\nALTER TABLE users ALTER COLUMN name SET DEFAULT 'z';\n",
        ),
        (
            "20240105000000_irreversible.sql",
            b"CREATE TABLE c (id INT);\n",
        ),
        ("20240106000000_empty_undo.sql", b"CREATE TABLE d (id INT);\n-- @UNDO\n"),
        (
            "20240107000000_after.sql",
            b"CREATE TABLE e (id INT);\n-- @UNDO\nDROP TABLE e;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &[]);
    out.expect_code(33);
    let text = &out.stdout;
    for expected in [
        "20240101000000 20240101000000_users.sql: ok\n",
        "20240102000000 20240102000000_fails.sql: FAILED: undo failed at line 3: ",
        "20240103000000 20240103000000_leaves.sql: FAILED: undo does not restore the schema\n    added table public.b\n",
        "20240104000000 20240104000000_default.sql: FAILED: undo does not restore the schema\n    changed table public.users: column name: `text not null default 'x'::text` -> `text not null default 'z'::text`\n",
        "20240105000000 20240105000000_irreversible.sql: irreversible (no undo section)\n",
        "20240106000000 20240106000000_empty_undo.sql: FAILED: undo does not restore the schema\n    added table public.d\n",
        "20240107000000 20240107000000_after.sql: ok\n",
        "7 migration(s) checked in ",
        ": 4 failed, 1 irreversible\n",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // The run went on from each forward state.
    for t in ["a", "b", "c", "d", "e"] {
        assert!(table_exists(&db, t), "{t}");
    }
}

/// What `pg_dump --schema-only` shows beyond tables, indexes, views and routines, in the forms
/// PostgreSQL's ALTER/CREATE/COMMENT/GRANT pages document: one change per file after a base,
/// each with an empty undo, so each must be named as not restored (the base is irreversible).
const PG_DUMP_KINDS: &[(&str, &str)] = &[
    ("owner", "ALTER TABLE t OWNER TO undo_kinds_role"),
    (
        "default_privileges",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO undo_kinds_role",
    ),
    (
        "event_trigger",
        "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION on_ddl()",
    ),
    ("publication", "CREATE PUBLICATION pub FOR TABLE t"),
    (
        "ts_config",
        "CREATE TEXT SEARCH CONFIGURATION cfg (COPY = english)",
    ),
    (
        "ts_dictionary",
        "CREATE TEXT SEARCH DICTIONARY dict (TEMPLATE = simple)",
    ),
    (
        "operator",
        "CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int_eq3)",
    ),
    (
        "cast",
        "CREATE CAST (mood AS int) WITH FUNCTION mood_to_int(mood)",
    ),
    ("collation", "CREATE COLLATION coll FROM \"C\""),
    ("operator_family", "CREATE OPERATOR FAMILY fam USING btree"),
    (
        "user_mapping",
        "CREATE USER MAPPING FOR undo_kinds_role SERVER s",
    ),
    ("column_grant", "GRANT SELECT (a) ON t TO undo_kinds_role"),
    ("type_grant", "REVOKE USAGE ON TYPE mood FROM PUBLIC"),
    (
        "storage",
        "ALTER TABLE t ALTER COLUMN a SET STORAGE EXTERNAL",
    ),
    (
        "column_options",
        "ALTER TABLE t ALTER COLUMN b SET (n_distinct = 100)",
    ),
    ("cluster", "ALTER TABLE t CLUSTER ON t_pkey"),
    ("view_options", "ALTER VIEW v SET (security_barrier = true)"),
    (
        "view_default",
        "ALTER VIEW v ALTER COLUMN a SET DEFAULT 'x'",
    ),
    (
        "constraint_comment",
        "COMMENT ON CONSTRAINT t_pkey ON t IS 'pk'",
    ),
    (
        "trigger_comment",
        "COMMENT ON TRIGGER t_touch ON t IS 'touch'",
    ),
    (
        "aggregate",
        "DROP AGGREGATE agg(int); CREATE AGGREGATE agg(int) (sfunc = int4pl, stype = int, initcond = '1')",
    ),
    (
        "compression",
        "ALTER TABLE t ALTER COLUMN a SET COMPRESSION pglz",
    ),
    (
        "foreign_table_options",
        "ALTER FOREIGN TABLE ft OPTIONS (ADD k 'v')",
    ),
    (
        "access_method",
        "CREATE ACCESS METHOD am TYPE TABLE HANDLER heap_tableam_handler",
    ),
    (
        "conversion",
        "CREATE CONVERSION conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8",
    ),
    ("server_options", "ALTER SERVER s OPTIONS (ADD host 'h')"),
    (
        "server_grant",
        "GRANT USAGE ON FOREIGN SERVER s TO undo_kinds_role",
    ),
    (
        "column_fdw_options",
        "ALTER FOREIGN TABLE ft ALTER COLUMN x OPTIONS (ADD c 'd')",
    ),
    ("statistics_target", "ALTER STATISTICS st SET STATISTICS 50"),
    (
        "index_statistics",
        "ALTER INDEX t_expr ALTER COLUMN 1 SET STATISTICS 77",
    ),
    (
        "function_owner",
        "ALTER FUNCTION touch() OWNER TO undo_kinds_role",
    ),
    ("schema_owner", "ALTER SCHEMA sch OWNER TO undo_kinds_role"),
    (
        "sequence_owner",
        "ALTER SEQUENCE sq OWNER TO undo_kinds_role",
    ),
    (
        "matview_options",
        "ALTER MATERIALIZED VIEW mv SET (fillfactor = 50)",
    ),
    ("policy_comment", "COMMENT ON POLICY p ON t IS 'c'"),
    (
        "default_acl_revoke",
        "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
    ),
    (
        "toast_options",
        "ALTER TABLE t SET (toast.autovacuum_enabled = false)",
    ),
];

const PG_DUMP_BASE: &str = "CREATE TABLE t (id int PRIMARY KEY, a text, b int);
CREATE VIEW v AS SELECT id, a FROM t;
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE FUNCTION mood_to_int(mood) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 1';
CREATE FUNCTION int_eq3(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE AGGREGATE agg(int) (sfunc = int4pl, stype = int, initcond = '0');
CREATE FOREIGN DATA WRAPPER w;
CREATE SERVER s FOREIGN DATA WRAPPER w;
CREATE FOREIGN TABLE ft (x int) SERVER s;
CREATE SCHEMA sch;
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
CREATE STATISTICS st ON a, b FROM t;
CREATE INDEX t_expr ON t ((b + 1));
CREATE SEQUENCE sq;
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON t USING (true);
CREATE TABLE ti (id int GENERATED BY DEFAULT AS IDENTITY, a int NOT NULL);
CREATE UNIQUE INDEX ti_a ON ti (a);
CREATE UNIQUE INDEX ti_a2 ON ti (a) INCLUDE (id);
ALTER TABLE ti REPLICA IDENTITY USING INDEX ti_a;
CREATE TYPE pair AS (x int, y int);
CREATE TABLE typed (x int, y int);
CREATE STATISTICS sx (ndistinct) ON (a + 1), id FROM ti;
CREATE FUNCTION diff8(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';
CREATE TYPE r8 AS RANGE (subtype = float8);
CREATE FUNCTION h() RETURNS language_handler AS '$libdir/plpgsql', 'plpgsql_call_handler' LANGUAGE C;
";

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the fixture is its DDL"
)]
fn what_pg_dump_shows_is_checked_too() {
    let db = fresh_db("undo_pg_dump_kinds");
    psql(
        &db.url,
        "DO $$ BEGIN CREATE ROLE undo_kinds_role; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let mut files = vec![("001_base.sql".to_string(), PG_DUMP_BASE.to_string())];
    for (i, (name, sql)) in PG_DUMP_KINDS.iter().enumerate() {
        files.push((
            format!("{:03}_{name}.sql", i + 2),
            format!("{sql};\n-- @UNDO\n"),
        ));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_bytes()))
        .collect();
    let dir = dir_with(&refs);
    let out = crdb_test(&db, dir.path(), &["--json", "--force"]);
    out.expect_code(33);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let migrations = report["migrations"].as_array().expect("migrations");
    assert_eq!(migrations.len(), PG_DUMP_KINDS.len() + 1, "{report}");
    assert_eq!(migrations[0]["verdict"], "irreversible", "{report}");
    for m in &migrations[1..] {
        assert_eq!(m["verdict"], "not_restored", "{m}");
        assert_eq!(
            m["differences"].as_array().map(Vec::len),
            Some(1),
            "one object named: {m}"
        );
    }
}

#[test]
fn a_database_holding_objects_is_refused_unless_forced() {
    let db = fresh_db("undo_refuse");
    psql(&db.url, "CREATE TABLE precious (id INT)");
    let dir = dir_with(&GOOD[..1]);
    let out = crdb_test(&db, dir.path(), &[]);
    out.expect_code(20);
    assert!(
        out.stderr.contains("empty scratch database"),
        "{}",
        out.stderr
    );
    assert!(!table_exists(&db, "users"), "nothing ran");
    crdb_test(&db, dir.path(), &["--force"]).expect_code(0);
}

#[test]
fn a_non_transactional_undo_is_checked_and_the_forward_reapplied() {
    let db = fresh_db("undo_notx");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_idx.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n-- @UNDO\nDROP INDEX CONCURRENTLY users_name;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["migrations"][1]["transactional"], false, "{report}");
    assert_eq!(report["migrations"][1]["verdict"], "ok", "{report}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name'"
        ),
        1
    );
}

/// A non-transactional undo that leaves the forward's index behind is named as not restored,
/// not as a forward SQL that fails to apply again; the database is rebuilt (emptied, every
/// forward SQL replayed) and the run goes on, as a pg_dump comparison that re-creates its
/// database does, so the later migrations still get their own verdicts.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CREATE INDEX CONCURRENTLY and the rebuild are PostgreSQL's"
)]
fn a_non_transactional_undo_that_leaves_an_index_is_not_restored_and_the_run_goes_on() {
    let db = fresh_db("undo_notx_leaves");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_index.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n-- @UNDO\n",
        ),
        GOOD[2],
        (
            "20240104000000_bad.sql",
            b"ALTER TABLE users ADD COLUMN b INT;\n-- @UNDO\nSELECT 1;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(33);
    let (report, verdicts) = report_of(&out);
    assert_eq!(
        verdicts,
        ["ok", "not_restored", "ok", "not_restored"],
        "{report}"
    );
    assert_eq!(
        report["migrations"][1]["differences"][0]["name"], "public.users_name",
        "{report}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name'"
        ),
        1,
        "the rebuilt database is in the forward state"
    );
    assert!(
        column_exists(&db, "users", "b"),
        "the run went on to the end"
    );
}

/// What a file sets for its session does not leak into the next file or the snapshots: a
/// pg_dump-made file empties `search_path` (and sets DateStyle, creates a temporary table),
/// yet a view keeps printing the same, and later unqualified names still resolve, as they do
/// when each file runs in a session of its own.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: set_config, DateStyle and DISCARD are its"
)]
fn session_settings_of_one_file_do_not_leak_into_the_next() {
    let db = fresh_db("undo_session_leak");
    let dir = dir_with(&[
        (
            "001_base.sql",
            b"CREATE TABLE t (id INT PRIMARY KEY, d DATE DEFAULT '2020-01-02');\nCREATE VIEW v AS SELECT id FROM t;\n-- @UNDO\nDROP VIEW v;\nDROP TABLE t;\n",
        ),
        (
            "002_dumped.sql",
            b"SELECT pg_catalog.set_config('search_path', '', false);\nSET DateStyle = 'SQL, DMY';\nCREATE TEMP TABLE scratch (x INT);\nCREATE TABLE public.a (id integer);\n-- @UNDO\nDROP TABLE public.a;\n",
        ),
        (
            "003_unqualified.sql",
            b"CREATE TEMP TABLE scratch (x INT);\nCREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE b;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(0);
    let (report, verdicts) = report_of(&out);
    assert_eq!(verdicts, ["ok", "ok", "ok"], "{report}");
    assert!(table_exists(&db, "b"), "the last file ran in public");
}

/// A database holding our ledger is not rebuilt either: the ledger can hold rows of
/// migrations that created no object, and emptying the database would lose them.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CREATE INDEX CONCURRENTLY"
)]
fn a_database_with_our_ledger_is_not_rebuilt() {
    let db = fresh_db("undo_notx_ledger");
    psql(
        &db.url,
        "CREATE TABLE _migrations (version BIGINT PRIMARY KEY)",
    );
    psql(&db.url, "INSERT INTO _migrations VALUES (1)");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_index.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n-- @UNDO\n",
        ),
        GOOD[2],
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(33);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["migrations"][2]["verdict"], "not_run", "{report}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM _migrations"),
        1,
        "the ledger and its row stay"
    );
}

/// An undo whose rows a deferred foreign key still needs fails as it would at its COMMIT in
/// a rollback, although `test` rolls the undo back instead of committing it.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CockroachDB defers no constraint"
)]
fn an_undo_breaking_a_deferred_constraint_fails() {
    let db = fresh_db("undo_deferred");
    let dir = dir_with(&[
        (
            "001_tables.sql",
            b"CREATE TABLE p (id INT PRIMARY KEY);\nCREATE TABLE c (pid INT REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n-- @UNDO\nDROP TABLE c;\nDROP TABLE p;\n",
        ),
        (
            "002_rows.sql",
            b"INSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1);\n-- @UNDO\nDELETE FROM p;\n",
        ),
        (
            "003_after.sql",
            b"CREATE TABLE d (id INT);\n-- @UNDO\nDROP TABLE d;\n",
        ),
    ]);
    let out = crdb_test(&db, dir.path(), &["--json"]);
    out.expect_code(33);
    let (report, verdicts) = report_of(&out);
    let migrations = report["migrations"].as_array().expect("migrations");
    assert_eq!(verdicts, ["ok", "undo_failed", "ok"], "{report}");
    assert_eq!(migrations[1]["line"], 4, "the undo's statement: {report}");
    assert!(
        migrations[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("foreign key")),
        "{report}"
    );
}

/// With `--force` the database held objects before the run, which a rebuild would lose: the
/// run stops at a non-transactional undo that left the forward SQL unable to apply again.
#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: CREATE INDEX CONCURRENTLY"
)]
fn a_forced_run_is_not_rebuilt() {
    let db = fresh_db("undo_notx_forced");
    psql(&db.url, "CREATE TABLE precious (id INT)");
    let dir = dir_with(&[
        GOOD[0],
        (
            "20240102000000_index.sql",
            b"-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n-- @UNDO\n",
        ),
        GOOD[2],
    ]);
    let out = crdb_test(&db, dir.path(), &["--json", "--force"]);
    out.expect_code(33);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(report["migrations"][2]["verdict"], "not_run", "{report}");
    assert!(
        table_exists(&db, "precious"),
        "what the database held stays"
    );
}

/// The project sets of tests/fixtures/real (and the larger import fixtures), imported and run
/// through `test`: every undo restores its schema, and the run stays well within seconds.
#[test]
fn the_fixture_projects_undo_cleanly() {
    let sets = [
        ("real", "golang-migrate"),
        ("real", "sqlx"),
        ("real", "goose"),
        ("real", "dbmate"),
        ("real", "flyway"),
        ("real", "diesel"),
        ("real", "pop"),
        ("import", "golang-migrate"),
        ("import", "goose"),
        ("import", "sqlx"),
    ];
    for (group, tool) in sets {
        let tmp = tempfile::tempdir().expect("tempdir");
        let into = tmp.path().join("migrations");
        run(bin()
            .args(["import", "--from", tool])
            .arg(support::fixtures::fixture(group, tool))
            .arg("--into")
            .arg(&into))
        .expect_code(0);
        let db = fresh_db(&format!("undo_{group}_{tool}"));
        let started = std::time::Instant::now();
        let out = crdb_test(&db, &into, &["--json"]);
        let took = started.elapsed();
        assert_eq!(
            out.code, 0,
            "{group}/{tool}:\n{}\n{}",
            out.stdout, out.stderr
        );
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let migrations = report["migrations"].as_array().expect("migrations");
        assert!(migrations.len() >= 2, "{group}/{tool}: {report}");
        assert!(
            migrations.iter().all(|m| m["verdict"] == "ok"),
            "{group}/{tool}: {report}"
        );
        assert!(
            took < std::time::Duration::from_secs(30),
            "{group}/{tool} took {took:?}"
        );
        eprintln!(
            "{group}/{tool}: {} migrations in {took:?}",
            migrations.len()
        );
    }
}

//! End to end, through the binary against a real server: taking over a project another
//! tool manages (each tool's history table created with psql as that tool documents it, then
//! `migrate` refusing, `baseline --from`, a no-op `migrate`, a new file applying), `import`'s
//! output and refusals, a foreign layout as one error, down-only and placeholder files, the
//! file line of a failed forward or undo statement in both transaction modes, log format
//! detection under a pty (`script`), and `status` when the files do not load.
//!
//! The source projects are in tests/fixtures/real/<tool>/, written in each tool's documented
//! layout; every one holds the same two migrations (create `accounts`, add its `name`), so the
//! same psql replay stands for "that tool applied them".

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::fixtures::{FLYWAY_HISTORY_TABLE, fixture};
use support::*;

fn crdb(db: &TestDb, dir: &Path, args: &[&str]) -> Output {
    run(bin_at(&db.url, dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_HOLDER", "real-projects-test")
        .args(args))
}

/// `version|applied_by|status|statements_done` per ledger row, by version.
fn ledger(db: &TestDb) -> Vec<String> {
    if !table_exists(db, "_migrations") {
        return Vec::new();
    }
    let out = psql(
        &db.url,
        "SELECT version || '|' || applied_by || '|' || status || '|' || statements_done \
           FROM _migrations ORDER BY version",
    );
    out.lines().map(str::to_string).collect()
}

fn versions(db: &TestDb) -> Vec<i64> {
    ledger(db)
        .iter()
        .filter_map(|r| r.split('|').next()?.parse().ok())
        .collect()
}

/// Columns of `accounts`, in order.
fn account_columns(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(column_name, ',' ORDER BY ordinal_position), '') \
           FROM information_schema.columns WHERE table_name = 'accounts'",
    )
}

/// Every row and column of `table`, as text, for "left untouched" comparisons.
fn dump(db: &TestDb, table: &str) -> String {
    psql(
        &db.url,
        &format!(
            "SELECT string_agg(c.column_name || ' ' || c.data_type, ',' ORDER BY c.ordinal_position) \
               FROM information_schema.columns c WHERE c.table_name = '{table}'; \
             SELECT t::text FROM {table} t ORDER BY 1;"
        ),
    )
}

/// The SQL that tool ran for the two fixture migrations.
const APPLIED_BY_THE_TOOL: &str =
    "CREATE TABLE accounts (id BIGINT PRIMARY KEY); ALTER TABLE accounts ADD COLUMN name TEXT;";

/// A file written in our format after the switch: it needs both earlier migrations applied,
/// so a baseline that recorded too little makes `migrate` fail (the table exists) and one that
/// recorded too much hides it.
const NEW_FILE: (&str, &str) = (
    "30000101000000_add_email.sql",
    "ALTER TABLE accounts ADD COLUMN email TEXT;\n-- @UNDO\nALTER TABLE accounts DROP COLUMN email;\n",
);

/// One tool's case: its history table as the tool creates it, the rows it writes after
/// applying both fixture migrations, the versions that gives here, and rows that make the
/// history unusable for a baseline (dirty, failed, or naming a version with no file).
struct Case {
    tool: &'static str,
    table: &'static str,
    create: &'static str,
    applied: &'static str,
    want: [i64; 2],
    bad: &'static str,
    bad_needle: &'static str,
}

const CASES: &[Case] = &[
    Case {
        tool: "golang-migrate",
        table: "schema_migrations",
        // database/postgres: ensureVersionTable.
        create: "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);",
        applied: "INSERT INTO schema_migrations (version, dirty) VALUES (2, false);",
        want: [1, 2],
        bad: "UPDATE schema_migrations SET dirty = true;",
        bad_needle: "version 2 is dirty",
    },
    Case {
        tool: "sqlx",
        table: "_sqlx_migrations",
        // sqlx-postgres migrate.rs: ensure_migrations_table.
        create: "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
                     version BIGINT PRIMARY KEY,
                     description TEXT NOT NULL,
                     installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
                     success BOOLEAN NOT NULL,
                     checksum BYTEA NOT NULL,
                     execution_time BIGINT NOT NULL);",
        applied: "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
                     (20240101000001, 'create accounts', true, '\\x01', 3),
                     (20240101000002, 'add name', true, '\\x02', 2);",
        want: [20240101000001, 20240101000002],
        bad: "UPDATE _sqlx_migrations SET success = false WHERE version = 20240101000002;",
        bad_needle: "20240101000002",
    },
    Case {
        tool: "goose",
        table: "goose_db_version",
        // internal/dialect/dialectquery/postgres.go: CreateTable, then the version-0 row.
        create: "CREATE TABLE goose_db_version (
                     id serial NOT NULL,
                     version_id bigint NOT NULL,
                     is_applied boolean NOT NULL,
                     tstamp timestamp NULL default now(),
                     PRIMARY KEY(id));
                 INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);",
        applied: "INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, true), (2, true);",
        want: [1, 2],
        // Goose has no dirty state: a history naming a file this directory lacks is refused.
        bad: "INSERT INTO goose_db_version (version_id, is_applied) VALUES (7, true);",
        bad_needle: "7",
    },
    Case {
        tool: "dbmate",
        table: "schema_migrations",
        // pkg/driver/postgres: CreateMigrationsTable.
        create: "create table if not exists schema_migrations (version varchar(128) primary key);",
        applied: "insert into schema_migrations (version) values ('20240102030405'), ('20240102030406');",
        want: [20240102030405, 20240102030406],
        bad: "insert into schema_migrations (version) values ('20240102030499');",
        bad_needle: "20240102030499",
    },
    Case {
        tool: "flyway",
        table: "flyway_schema_history",
        create: FLYWAY_HISTORY_TABLE,
        applied: "INSERT INTO flyway_schema_history VALUES
                     (1, '1', 'create accounts', 'SQL', 'V1__create_accounts.sql', 11, 'app', now(), 4, true),
                     (2, '1.1', 'add name', 'SQL', 'V1.1__add_name.sql', 12, 'app', now(), 3, true);",
        want: [1, 2],
        bad: "UPDATE flyway_schema_history SET success = false WHERE installed_rank = 2;",
        bad_needle: "version 1.1 (V1.1__add_name.sql) has success = false",
    },
    Case {
        tool: "diesel",
        table: "__diesel_schema_migrations",
        // diesel_migrations: the table setup SQL.
        create: "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                     version VARCHAR(50) PRIMARY KEY NOT NULL,
                     run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
        applied: "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000'), ('20240102120000');",
        want: [20240101120000, 20240102120000],
        bad: "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240109120000');",
        bad_needle: "20240109120000",
    },
    Case {
        tool: "pop",
        table: "schema_migration",
        // pop's migrator: the fizz table (version string, size 14) and its unique index.
        create: "CREATE TABLE schema_migration (version VARCHAR (14) NOT NULL);
                 CREATE UNIQUE INDEX schema_migration_version_idx ON schema_migration (version);",
        applied: "INSERT INTO schema_migration (version) VALUES ('20240101000001'), ('20240101000002');",
        want: [20240101000001, 20240101000002],
        bad: "INSERT INTO schema_migration (version) VALUES ('20240101000009');",
        bad_needle: "20240101000009",
    },
];

/// Imports `tool`'s fixture through the binary into a new directory; returns it and stdout.
fn import_fixture(tool: &str) -> (tempfile::TempDir, PathBuf, Output) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let into = tmp.path().join("migrations");
    let out = run(bin()
        .args(["import", "--from", tool])
        .arg(fixture("real", tool))
        .arg("--into")
        .arg(&into));
    out.expect_code(0);
    (tmp, into, out)
}

/// The whole take-over for one tool: refused, baselined, a no-op, then only the new file.
fn take_over(case: &Case) {
    let tag = format!("take_{}", case.tool);
    let db = fresh_db(&tag);
    psql(&db.url, APPLIED_BY_THE_TOOL);
    psql(&db.url, case.create);
    psql(&db.url, case.applied);
    let foreign_before = dump(&db, case.table);
    let (_keep, dir, _) = import_fixture(case.tool);

    // migrate refuses: 32, naming the table and the baseline command; nothing recorded or run.
    let refused = crdb(&db, &dir, &["migrate"]);
    refused.expect_code(32);
    let want_cmd = format!("crdb-migrate baseline --from {}", case.tool);
    assert!(
        refused.stderr.contains(case.table) && refused.stderr.contains(&want_cmd),
        "{}: {}",
        case.tool,
        refused.stderr
    );
    assert!(versions(&db).is_empty(), "{}: nothing recorded", case.tool);
    assert!(!refused.has_event("migration.applied"));
    // plan refuses the same way.
    crdb(&db, &dir, &["plan"]).expect_code(32);

    // baseline --from TOOL records exactly the tool's applied versions, as a baseline.
    let base = crdb(&db, &dir, &["baseline", "--from", case.tool]);
    base.expect_code(0);
    assert_eq!(versions(&db), case.want, "{}: {}", case.tool, base.stdout);
    for row in ledger(&db) {
        let by = row.split('|').nth(1).unwrap_or_default();
        assert!(
            by.starts_with("baseline:") && by.contains("real-projects-test"),
            "{}: {row}",
            case.tool
        );
        assert!(row.ends_with("|applied|0"), "{}: {row}", case.tool);
    }
    assert!(base.has_event("baseline"), "{}: {}", case.tool, base.stdout);

    // migrate is now a no-op.
    let noop = crdb(&db, &dir, &["migrate"]);
    noop.expect_code(0);
    assert!(
        noop.events_named("migration.applied").is_empty(),
        "{}: {}",
        case.tool,
        noop.stdout
    );
    assert_eq!(account_columns(&db), "id,name");

    // A file added after the switch is the only one applied.
    fs::write(dir.join(NEW_FILE.0), NEW_FILE.1).expect("write");
    let next = crdb(&db, &dir, &["migrate"]);
    next.expect_code(0);
    let applied = next.events_named("migration.applied");
    assert_eq!(applied.len(), 1, "{}: {}", case.tool, next.stdout);
    assert_eq!(field(&applied[0], "version").as_i64(), Some(30000101000000));
    assert_eq!(account_columns(&db), "id,name,email");
    assert_eq!(
        versions(&db),
        [case.want[0], case.want[1], 30000101000000],
        "{}",
        case.tool
    );

    // The other tool's table was only read: switching back stays possible.
    assert_eq!(dump(&db, case.table), foreign_before, "{}", case.tool);

    // Every row keeps its undo, the baselined ones included: the image before the new file
    // (the same directory without it) undoes it from the ledger alone.
    let kept = "SELECT count(*) FROM _migrations \
                WHERE undo_sql IS NOT NULL AND undo_no_transaction IS NOT NULL AND length(undo_checksum) = 64";
    assert_eq!(count(&db, kept), 3, "{}", case.tool);
    fs::remove_file(dir.join(NEW_FILE.0)).expect("remove");
    let back = crdb(&db, &dir, &["rollback", "--to-image"]);
    back.expect_code(0);
    assert_eq!(
        back.events_named("migration.rolled_back").len(),
        1,
        "{}",
        case.tool
    );
    assert_eq!(account_columns(&db), "id,name", "{}", case.tool);
    assert_eq!(versions(&db), case.want, "{}", case.tool);
    crdb(&db, &dir, &["rollback", "--to-image"]).expect_code(0);
    assert_eq!(
        versions(&db),
        case.want,
        "{}: a rerun does nothing",
        case.tool
    );
}

/// A dirty, failed or unmatched foreign history: baseline refuses (32) naming the rows, and
/// records nothing; the foreign table is unchanged.
fn bad_history(case: &Case) {
    let db = fresh_db(&format!("bad_{}", case.tool));
    psql(&db.url, case.create);
    psql(&db.url, case.applied);
    psql(&db.url, case.bad);
    let before = dump(&db, case.table);
    let (_keep, dir, _) = import_fixture(case.tool);
    let out = crdb(&db, &dir, &["baseline", "--from", case.tool]);
    out.expect_code(32);
    assert!(
        out.stderr.contains(case.bad_needle),
        "{}: want {:?} in\n{}",
        case.tool,
        case.bad_needle,
        out.stderr
    );
    assert!(versions(&db).is_empty(), "{}", case.tool);
    assert_eq!(dump(&db, case.table), before);
}

#[test]
fn take_over_golang_migrate() {
    take_over(&CASES[0]);
    bad_history(&CASES[0]);
}

#[test]
fn take_over_sqlx() {
    take_over(&CASES[1]);
    bad_history(&CASES[1]);
}

#[test]
fn take_over_goose() {
    take_over(&CASES[2]);
    bad_history(&CASES[2]);
}

#[test]
fn take_over_dbmate() {
    take_over(&CASES[3]);
    bad_history(&CASES[3]);
}

#[test]
fn take_over_flyway() {
    take_over(&CASES[4]);
    bad_history(&CASES[4]);
}

#[test]
fn take_over_diesel() {
    take_over(&CASES[5]);
    bad_history(&CASES[5]);
}

#[test]
fn take_over_pop() {
    take_over(&CASES[6]);
    bad_history(&CASES[6]);
}

/// Part of a history: what the tool says, not what the directory has, is recorded.
#[test]
fn baseline_honours_a_partial_foreign_history() {
    // golang-migrate at version 1; goose applied 2 then rolled it back; Flyway undid 1.1.
    let partial: [(&Case, &str); 3] = [
        (
            &CASES[0],
            "INSERT INTO schema_migrations (version, dirty) VALUES (1, false);",
        ),
        (
            &CASES[2],
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, true), (2, true), (2, false);",
        ),
        (
            &CASES[4],
            "INSERT INTO flyway_schema_history VALUES
                 (1, '1', 'create accounts', 'SQL', 'V1__create_accounts.sql', 11, 'app', now(), 4, true),
                 (2, '1.1', 'add name', 'SQL', 'V1.1__add_name.sql', 12, 'app', now(), 3, true),
                 (3, '1.1', 'add name', 'UNDO_SQL', 'U1.1__add_name.sql', 13, 'app', now(), 3, true);",
        ),
    ];
    for (case, rows) in partial {
        let db = fresh_db(&format!("partial_{}", case.tool));
        psql(&db.url, "CREATE TABLE accounts (id BIGINT PRIMARY KEY);");
        psql(&db.url, case.create);
        psql(&db.url, rows);
        let (_keep, dir, _) = import_fixture(case.tool);
        crdb(&db, &dir, &["baseline", "--from", case.tool]).expect_code(0);
        assert_eq!(versions(&db), [case.want[0]], "{}", case.tool);
        // The rest is pending and applies.
        let out = crdb(&db, &dir, &["migrate"]);
        out.expect_code(0);
        assert_eq!(
            out.events_named("migration.applied").len(),
            1,
            "{}",
            case.tool
        );
        assert_eq!(account_columns(&db), "id,name", "{}", case.tool);
    }
}

#[test]
fn baseline_version_then_refused_on_a_started_ledger() {
    let db = fresh_db("baseline_version");
    psql(&db.url, APPLIED_BY_THE_TOOL);
    let (_keep, dir, _) = import_fixture("golang-migrate");
    fs::write(dir.join("3_add_email.sql"), NEW_FILE.1).expect("write");
    // A version with no file is refused, naming it.
    let out = crdb(&db, &dir, &["baseline", "--version", "5"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains('5'), "{}", out.stderr);
    assert!(versions(&db).is_empty());

    crdb(&db, &dir, &["baseline", "--version", "2"]).expect_code(0);
    assert_eq!(versions(&db), [1, 2]);
    assert!(
        ledger(&db).iter().all(|r| r
            .split('|')
            .nth(1)
            .is_some_and(|b| b.starts_with("baseline:"))),
        "{:?}",
        ledger(&db)
    );
    // A ledger with rows is not baselined again, by version or from a tool.
    let again = crdb(&db, &dir, &["baseline", "--version", "3"]);
    again.expect_code(32);
    assert!(
        again.stderr.contains("already has 2 row(s)"),
        "{}",
        again.stderr
    );
    crdb(&db, &dir, &["baseline", "--from", "golang-migrate"]).expect_code(32);
    assert_eq!(versions(&db), [1, 2]);
    // migrate applies the rest.
    let out = crdb(&db, &dir, &["migrate"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 1);
    assert_eq!(versions(&db), [1, 2, 3]);
}

#[test]
fn ignore_foreign_history_lets_migrate_through() {
    let db = fresh_db("ignore_foreign");
    psql(&db.url, CASES[3].create);
    psql(&db.url, CASES[3].applied);
    let (_keep, dir, _) = import_fixture("golang-migrate");
    crdb(&db, &dir, &["migrate"]).expect_code(32);
    let out = run(bin_at(&db.url, &dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_IGNORE_FOREIGN_HISTORY", "true")
        .arg("migrate"));
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 2);
    assert_eq!(versions(&db), [1, 2]);
    assert_eq!(account_columns(&db), "id,name");
}

// ---------------------------------------------------------------------------------------------
// import and foreign layouts
// ---------------------------------------------------------------------------------------------

#[test]
fn import_prints_one_line_per_file_and_never_overwrites() {
    for (tool, want) in [
        (
            "golang-migrate",
            vec![
                "000001_create_accounts.up.sql + 000001_create_accounts.down.sql -> 1_create_accounts.sql",
                "000002_add_name.up.sql + 000002_add_name.down.sql -> 2_add_name.sql",
            ],
        ),
        (
            "goose",
            vec![
                "00001_create_accounts.sql -> 1_create_accounts.sql",
                "00002_add_name.sql -> 2_add_name.sql",
            ],
        ),
        (
            "flyway",
            vec![
                "V1__create_accounts.sql + U1__create_accounts.sql -> 1_create_accounts.sql",
                "V1.1__add_name.sql + U1.1__add_name.sql -> 2_add_name.sql",
            ],
        ),
        (
            "diesel",
            vec![
                "2024-01-01-120000_create_accounts/up.sql + 2024-01-01-120000_create_accounts/down.sql -> 20240101120000_create_accounts.sql",
                "2024-01-02-120000_add_name/up.sql + 2024-01-02-120000_add_name/down.sql -> 20240102120000_add_name.sql",
            ],
        ),
    ] {
        let (_keep, into, out) = import_fixture(tool);
        assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "{tool}");
        assert!(
            !out.stdout.contains("\"timestamp\"") && !out.stderr.contains("\"level\":\"INFO\""),
            "{tool}: only the output: {}\n{}",
            out.stdout,
            out.stderr
        );
        let before =
            fs::read(into.join(want[0].rsplit(" -> ").next().unwrap_or(""))).expect("written");
        // Importing again into the same directory is refused (20) and changes nothing.
        let again = run(bin()
            .args(["import", "--from", tool])
            .arg(fixture("real", tool))
            .arg("--into")
            .arg(&into));
        again.expect_code(20);
        assert!(
            again.stderr.contains("never overwrites"),
            "{}",
            again.stderr
        );
        assert_eq!(
            fs::read(into.join(want[0].rsplit(" -> ").next().unwrap_or(""))).expect("kept"),
            before
        );
        // The directory loads as ours.
        run(bin().env("MIGRATIONS_DIR", &into).arg("verify")).expect_code(0);
    }
    // MIGRATIONS_DIR is the default destination.
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(bin()
        .env("MIGRATIONS_DIR", tmp.path())
        .args(["import", "--from", "pop"])
        .arg(fixture("real", "pop")));
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert!(tmp.path().join("20240101000002_add_name.sql").is_file());
}

#[test]
fn a_foreign_layout_is_one_error_naming_the_import_command() {
    let db = fresh_db("foreign_layout");
    for tool in [
        "golang-migrate",
        "flyway",
        "diesel",
        "goose",
        "sqlx",
        "dbmate",
        "pop",
    ] {
        for cmd in ["migrate", "verify", "plan"] {
            let out = crdb(&db, &fixture("real", tool), &[cmd]);
            out.expect_code(20);
            // sqlx and pop (without dialect variants) write golang-migrate's layout: the
            // advice names golang-migrate's command and says which flag the others take, so
            // that `baseline --from sqlx|pop` can read the mapping afterwards.
            let ok = match tool {
                "sqlx" | "pop" => {
                    out.stderr
                        .contains("`crdb-migrate import --from golang-migrate ")
                        && out.stderr.contains(&format!("`--from {tool}`"))
                }
                _ => out
                    .stderr
                    .contains(&format!("`crdb-migrate import --from {tool} ")),
            };
            assert!(ok, "{tool} {cmd}: {}", out.stderr);
            let errors: Vec<&str> = out.stderr.lines().filter(|l| !l.starts_with('{')).collect();
            assert_eq!(errors.len(), 1, "{tool} {cmd}: one error line: {errors:#?}");
            assert!(!out.stderr.contains("bad file name"), "{}", out.stderr);
        }
    }
    assert!(
        !table_exists(&db, "_migrations") && !table_exists(&db, "_migrations_lease"),
        "nothing was sent to the database"
    );
}

// ---------------------------------------------------------------------------------------------
// Down-only and placeholder files
// ---------------------------------------------------------------------------------------------

#[test]
fn down_only_and_placeholder_files_through_migrate_and_rollback() {
    let db = fresh_db("down_only");
    let dir = dir_with(&[
        (
            "1_create_log.sql",
            b"CREATE TABLE log (what TEXT);\n-- @UNDO\nDROP TABLE log;\n",
        ),
        (
            "2_down_only.sql",
            b"-- The forward change was only needed on MySQL.\n\n-- @UNDO\nINSERT INTO log VALUES ('undo of 2 ran');\n",
        ),
        ("3_placeholder.sql", b""),
        (
            "4_comments_only.sql",
            b"-- reserved version\n-- @UNDO\n-- nothing to undo\n",
        ),
    ]);
    let v = crdb(&db, dir.path(), &["verify"]);
    v.expect_code(0);
    let shown = format!("{}{}", v.stdout, v.stderr);
    assert!(shown.contains("empty_forward"), "{shown}");
    for f in [
        "2_down_only.sql",
        "3_placeholder.sql",
        "4_comments_only.sql",
    ] {
        assert!(shown.contains(f), "{f}: {shown}");
    }

    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(0);
    assert_eq!(
        out.events_named("migration.applied").len(),
        4,
        "{}",
        out.stdout
    );
    assert_eq!(versions(&db), [1, 2, 3, 4]);
    assert_eq!(psql(&db.url, "SELECT count(*) FROM log"), "0");

    // Rolling back 4 and 3 does nothing; rolling back 2 runs its undo.
    crdb(&db, dir.path(), &["rollback", "--count", "2"]).expect_code(0);
    assert_eq!(versions(&db), [1, 2]);
    assert_eq!(psql(&db.url, "SELECT count(*) FROM log"), "0");
    crdb(&db, dir.path(), &["rollback"]).expect_code(0);
    assert_eq!(versions(&db), [1]);
    assert_eq!(psql(&db.url, "SELECT what FROM log"), "undo of 2 ran");
    // And forward again.
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    assert_eq!(versions(&db), [1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------------
// Failed statements: index, section, file line
// ---------------------------------------------------------------------------------------------

/// Asserts stderr names `statement i of n`, the section and the file line.
#[track_caller]
fn names_statement(out: &Output, index: usize, total: usize, section: &str, line: usize) {
    let want = format!("statement {index} of {total} ({section}, line {line}:");
    assert!(
        out.stderr.contains(&want),
        "want {want:?} in\n{}",
        out.stderr
    );
}

#[test]
fn transactional_forward_and_undo_failures_name_the_file_line() {
    let db = fresh_db("lines_tx");
    // Forward failure: the third statement, on line 5.
    let dir = dir_with(&[(
        "1_forward_fails.sql",
        b"-- a comment\nCREATE TABLE f1 (id INT);\n\nINSERT INTO f1 VALUES (1);\nINSERT INTO no_such_table VALUES (1);\n-- @UNDO\nDROP TABLE f1;\n",
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    names_statement(&out, 3, 3, "forward", 5);
    assert!(!table_exists(&db, "f1"), "rolled back");
    assert!(versions(&db).is_empty());

    // Undo failure: the undo's second statement is on line 7 of the file.
    let db = fresh_db("lines_tx_undo");
    let dir = dir_with(&[(
        "1_undo_fails.sql",
        b"CREATE TABLE u1 (id INT);\n-- @UNDO\n-- undo comment\nDROP TABLE u1;\n\n-- the next one fails\nDROP TABLE no_such_table;\n",
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(30);
    names_statement(&out, 2, 2, "undo", 7);
    assert!(table_exists(&db, "u1"), "the undo was rolled back");
    assert_eq!(versions(&db), [1]);

    // The server's error position, on the statement's 3rd line, is the line reported.
    let db = fresh_db("lines_tx_pos");
    let dir = dir_with(&[(
        "1_position.sql",
        b"CREATE TABLE p1 (id INT);\n\nSELECT 1,\n  2,\n  no_such_column\nFROM p1;\n",
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    names_statement(&out, 2, 2, "forward", 5);
    assert!(out.stderr.contains("42703"), "{}", out.stderr);
}

#[test]
fn no_transaction_failures_first_is_clean_later_is_dirty() {
    // First forward statement fails: nothing ran, exit 30, the ledger has no row for it.
    let db = fresh_db("lines_nt_first");
    let dir = dir_with(&[(
        "1_first_fails.sql",
        b"-- @NO_TRANSACTION\n-- comment\nCREATE INDEX i1 ON no_such_table (id);\nCREATE TABLE n1 (id INT);\n-- @UNDO\nDROP TABLE n1;\n",
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    names_statement(&out, 1, 2, "forward", 3);
    assert!(!out.stderr.contains("dirty"), "{}", out.stderr);
    assert!(
        ledger(&db).iter().all(|r| !r.contains("dirty")),
        "{:?}",
        ledger(&db)
    );
    assert!(!versions(&db).contains(&1), "{:?}", ledger(&db));

    // A later forward statement fails: the first took effect, exit 31, dirty with 1 done.
    let db = fresh_db("lines_nt_later");
    let dir = dir_with(&[(
        "1_later_fails.sql",
        b"-- @NO_TRANSACTION\nCREATE TABLE n2 (id INT);\n\n\nCREATE INDEX i2 ON n2 (no_such_column);\n-- @UNDO\nDROP TABLE n2;\n",
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(31);
    names_statement(&out, 2, 2, "forward", 5);
    assert!(table_exists(&db, "n2"));
    assert_eq!(ledger(&db), ["1|real-projects-test|dirty|1"]);

    // Undo: the first undo statement fails → 30, the row stays applied.
    let db = fresh_db("lines_nt_undo_first");
    let dir = dir_with(&[(
        "1_undo_first.sql",
        b"-- @NO_TRANSACTION\nCREATE TABLE n3 (id INT);\n-- @UNDO\n-- comment\n\n\nDROP INDEX no_such_index;\nDROP TABLE n3;\n",
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(30);
    names_statement(&out, 1, 2, "undo", 7);
    assert!(!out.stderr.contains("statements 1..0"), "{}", out.stderr);
    assert_eq!(ledger(&db), ["1|real-projects-test|applied|1"]);
    assert!(table_exists(&db, "n3"));

    // Undo: a later undo statement fails → 31, dirty.
    let db = fresh_db("lines_nt_undo_later");
    let dir = dir_with(&[(
        "1_undo_later.sql",
        b"-- @NO_TRANSACTION\nCREATE TABLE n4 (id INT);\nCREATE TABLE n5 (id INT);\n-- @UNDO\nDROP TABLE n5;\n\nDROP TABLE no_such_table;\n",
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(31);
    names_statement(&out, 2, 2, "undo", 7);
    assert!(
        ledger(&db).first().is_some_and(|r| r.contains("|dirty|")),
        "{:?}",
        ledger(&db)
    );
}

// ---------------------------------------------------------------------------------------------
// Humans and machines: log format and output-only commands
// ---------------------------------------------------------------------------------------------

/// Single-quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs the binary with `args` under a pseudo-terminal (`script -qec CMD /dev/null`);
/// `LOG_FORMAT` only when given. Returns what the terminal showed.
fn under_pty(db: &TestDb, dir: &Path, log_format: Option<&str>, args: &[&str]) -> Output {
    let mut line = sh_quote(BIN);
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .env("DATABASE_URL", &db.url)
        .env("MIGRATIONS_DIR", dir)
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .env("MIGRATE_TERMINATION_LOG", "/dev/null")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null());
    if let Some(f) = log_format {
        cmd.env("LOG_FORMAT", f);
    }
    run(&mut cmd)
}

#[test]
fn logs_are_text_on_a_terminal_and_json_in_pipes() {
    if !Path::new("/usr/bin/script").exists() {
        panic!("util-linux `script` is needed for the pty test");
    }
    let db = fresh_db("pty_logs");
    let dir = dir_with(&[
        (
            "1_a.sql",
            b"CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE a;\n",
        ),
        (
            "2_b.sql",
            b"CREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE b;\n",
        ),
    ]);
    // A terminal, LOG_FORMAT unset: text.
    let tty = under_pty(&db, dir.path(), None, &["migrate", "--target", "1"]);
    tty.expect_code(0);
    assert!(
        !tty.stdout.contains("{\"timestamp\""),
        "text on a terminal:\n{}",
        tty.stdout
    );
    assert!(
        tty.stdout.contains("INFO") && tty.stdout.contains("migration.applied"),
        "{}",
        tty.stdout
    );
    assert_eq!(versions(&db), [1]);
    // A terminal with LOG_FORMAT=json: JSON.
    let forced = under_pty(&db, dir.path(), Some("json"), &["migrate"]);
    forced.expect_code(0);
    assert!(
        forced
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("{\"timestamp\"")),
        "{}",
        forced.stdout
    );
    // Pipes, LOG_FORMAT unset: JSON.
    let piped = run(bin_at(&db.url, dir.path())
        .env_remove("LOG_FORMAT")
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .arg("migrate"));
    piped.expect_code(0);
    assert!(
        piped
            .stdout
            .lines()
            .any(|l| l.starts_with("{\"timestamp\"")),
        "{}",
        piped.stdout
    );
    assert!(piped.has_event("run.finished"));

    // Output-only commands print their output and no info log line, on a terminal or not.
    for args in [&["status"][..], &["plan"], &["verify"]] {
        let tty = under_pty(&db, dir.path(), None, args);
        tty.expect_code(0);
        assert!(
            !tty.stdout.contains(" INFO ") && !tty.stdout.contains("run finished"),
            "{args:?} on a terminal:\n{}",
            tty.stdout
        );
        let piped = run(bin_at(&db.url, dir.path())
            .env_remove("LOG_FORMAT")
            .env("MIGRATE_WAIT_TIMEOUT", "10s")
            .args(args));
        piped.expect_code(0);
        assert!(piped.events().is_empty(), "{args:?}: {}", piped.stdout);
        assert!(
            piped.stderr.trim().is_empty(),
            "{args:?}: nothing on stderr:\n{}",
            piped.stderr
        );
        assert!(
            !piped.stdout.trim().is_empty(),
            "{args:?} printed its output"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// status with files that do not load
// ---------------------------------------------------------------------------------------------

#[test]
fn status_with_a_bad_file_shows_the_database_and_the_problem() {
    let db = fresh_db("status_bad_file");
    let dir = dir_with(&[
        (
            "1_a.sql",
            b"CREATE TABLE a (id INT);\n-- @UNDO\nDROP TABLE a;\n",
        ),
        (
            "2_b.sql",
            b"CREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE b;\n",
        ),
    ]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    fs::write(
        dir.path().join("3_twice.sql"),
        "SELECT 1;\n-- @UNDO\nSELECT 2;\n-- @UNDO\nSELECT 3;\n",
    )
    .expect("write");
    fs::write(dir.path().join("Not-A-Name.sql"), "SELECT 1;\n").expect("write");
    // migrate refuses the set (20) ...
    crdb(&db, dir.path(), &["migrate"]).expect_code(20);
    // ... status still shows the database (0).
    let out = crdb(&db, dir.path(), &["status"]);
    out.expect_code(0);
    assert!(out.stdout.contains("current version: 2"), "{}", out.stdout);
    for needle in ["3_twice.sql", "Not-A-Name.sql", "did not load"] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    let applied: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("applied"))
        .collect();
    assert!(
        applied.iter().any(|l| l.starts_with("1 ")) && applied.iter().any(|l| l.starts_with("2 ")),
        "{}",
        out.stdout
    );
    let json = crdb(&db, dir.path(), &["status", "--json"]);
    json.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --json");
    assert_eq!(v["current_version"], 2);
    assert_eq!(v["migrations"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        v["file_problems"].as_array().map(Vec::len),
        Some(2),
        "{v:#}"
    );
}

/// Real files: CRLF line endings, a byte-order mark, non-ASCII text before the error (the
/// server's position counts characters), in both transaction modes and both sections.
#[test]
fn statement_lines_survive_crlf_bom_and_non_ascii() {
    // CRLF: the undo statement on line 7 fails.
    let db = fresh_db("lines_crlf");
    let dir = dir_with(&[(
        "1_crlf.sql",
        b"CREATE TABLE c1 (id INT);\r\n-- @UNDO\r\n-- undo comment\r\nDROP TABLE c1;\r\n\r\n-- next fails\r\nDROP TABLE no_such_table;\r\n",
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(30);
    names_statement(&out, 2, 2, "undo", 7);

    // A BOM and non-ASCII text before the error position, on the statement's 4th line.
    let db = fresh_db("lines_bom");
    let dir = dir_with(&[(
        "1_bom.sql",
        "\u{feff}-- café ☕\nCREATE TABLE b1 (name TEXT);\nINSERT INTO b1 (name)\nSELECT 'crème brûlée — ünïcödé'\n  || 'ß'\n  || 'ø'\n  || no_such_column\nFROM b1;\n"
            .as_bytes(),
    )]);
    let out = crdb(&db, dir.path(), &["migrate"]);
    out.expect_code(30);
    names_statement(&out, 2, 2, "forward", 7);

    // The same position mapping in a no-transaction undo (second statement: dirty, 31).
    let db = fresh_db("lines_nt_pos");
    let dir = dir_with(&[(
        "1_nt_pos.sql",
        "-- @NO_TRANSACTION\nCREATE TABLE p2 (id INT);\n-- @UNDO\nDROP INDEX IF EXISTS p2_idx;\nSELECT 'é',\n  'ü',\n  no_such_column\nFROM p2;\n"
            .as_bytes(),
    )]);
    crdb(&db, dir.path(), &["migrate"]).expect_code(0);
    let out = crdb(&db, dir.path(), &["rollback"]);
    out.expect_code(31);
    names_statement(&out, 2, 2, "undo", 7);
}

/// A history table with nothing applied is not an existing project: goose's own version-0 row,
/// golang-migrate's table before its first migration. `migrate` goes ahead; `baseline --from`
/// the wrong tool (dbmate on golang-migrate's table, which shares its name) says so.
#[test]
fn empty_foreign_histories_do_not_block_and_the_wrong_tool_is_named() {
    let db = fresh_db("empty_foreign");
    psql(&db.url, CASES[2].create); // goose: only the version-0 row
    psql(&db.url, CASES[0].create); // golang-migrate: no row yet
    let (_keep, dir, _) = import_fixture("golang-migrate");
    let out = crdb(&db, &dir, &["migrate"]);
    out.expect_code(0);
    assert_eq!(out.events_named("migration.applied").len(), 2);

    let db = fresh_db("wrong_tool");
    psql(&db.url, CASES[0].create);
    psql(&db.url, CASES[0].applied);
    let out = crdb(&db, &dir, &["baseline", "--from", "dbmate"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("schema_migrations is golang-migrate's history")
            && out.stderr.contains("`baseline --from golang-migrate`"),
        "{}",
        out.stderr
    );
    assert!(versions(&db).is_empty());
    // No history at all: said plainly.
    let db = fresh_db("no_history");
    let out = crdb(&db, &dir, &["baseline", "--from", "flyway"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("there is no flyway_schema_history table"),
        "{}",
        out.stderr
    );
}

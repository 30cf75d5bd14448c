//! `crdb_migrate::import` against fixtures written from each tool's documentation
//! (tests/fixtures/import/<tool>/): the converted files load with our loader, keep the SQL
//! byte for byte, and round-trip on a real server (import → migrate → same schema as psql
//! applying the source's up SQL → rollback to 0 → re-migrate). Refused layouts name every
//! file at fault and write nothing. Each tool's history table, created as that tool creates
//! it, is read and mapped onto the imported versions, dirty and failed rows included.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use crdb_migrate::import::history::{any_foreign_history, map_versions, read_history};
use crdb_migrate::import::{self, MAPPING_FILE, Tool};
use crdb_migrate::{Config, Migrator, Rollback};

/// The set as `migrate` loads it.
fn load_set(dir: &std::path::Path) -> Result<Vec<crdb_migrate::Migration>, crdb_migrate::Error> {
    Migrator::new(Config::new(None, dir)).load()
}
use support::fixtures::{FLYWAY_HISTORY_TABLE, fixture};
use support::{fresh_db, psql};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Columns, indexes and functions of the public schema, our own tables left out.
fn schema(url: &str) -> String {
    psql(
        url,
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' \
             || coalesce(column_default, '') \
           FROM information_schema.columns \
          WHERE table_schema = 'public' AND table_name NOT LIKE '\\_migrations%' ORDER BY 1; \
         SELECT indexname || ' ' || indexdef FROM pg_indexes \
          WHERE schemaname = 'public' AND tablename NOT LIKE '\\_migrations%' ORDER BY 1; \
         SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
          WHERE n.nspname = 'public' ORDER BY 1;",
    )
}

/// The up section of a goose or dbmate file: everything before its down marker.
fn before_marker(path: &Path, marker: &str) -> String {
    let text = fs::read_to_string(path).expect("read fixture");
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim().eq_ignore_ascii_case(marker) || line.trim().starts_with(marker) {
            break;
        }
        out.push_str(line);
    }
    out
}

fn read(rel: &str) -> String {
    fs::read_to_string(fixture("import", rel)).expect("read fixture")
}

/// The imported directory, removed when dropped.
struct Out {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl std::ops::Deref for Out {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// import → load → migrate → compare with psql applying `ups` → rollback to 0 → re-migrate.
fn round_trip(tag: &str, tool: Tool, src: &str, dialect: Option<&str>, ups: &[String]) -> Out {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let imported = import::import(tool, &fixture("import", src), &out, dialect)
        .unwrap_or_else(|p| panic!("import {src}: {p:#?}"));
    assert_eq!(imported.len(), ups.len(), "{imported:#?}");
    let set = load_set(&out).expect("the imported files load");
    assert_eq!(set.len(), ups.len());
    assert!(out.join(MAPPING_FILE).is_file());

    let ours = fresh_db(&format!("{tag}_ours"));
    let theirs = fresh_db(&format!("{tag}_psql"));
    for sql in ups {
        psql(&theirs.url, sql);
    }
    let want = schema(&theirs.url);
    assert!(!want.is_empty(), "the fixture creates something");
    let m = Migrator::new(Config::new(Some(ours.url.clone()), &out));
    runtime().block_on(async {
        assert_eq!(m.migrate(None).await.expect("migrate"), ups.len());
        assert_eq!(
            schema(&ours.url),
            want,
            "{tag}: migrate gives psql's schema"
        );
        assert_eq!(
            m.rollback(Rollback::Target(0)).await.expect("rollback"),
            ups.len()
        );
        assert_eq!(schema(&ours.url), "", "{tag}: rollback to 0 leaves nothing");
        assert_eq!(m.migrate(None).await.expect("re-migrate"), ups.len());
        assert_eq!(schema(&ours.url), want, "{tag}: re-migrate");
    });
    Out {
        _dir: dir,
        path: out,
    }
}

#[test]
fn golang_migrate_round_trip_keeps_bytes_crlf_and_missing_semicolons() {
    let ups: Vec<String> = [
        "000001_create_users.up.sql",
        "000002_add_name.up.sql",
        "000003_create_posts.up.sql",
        "000004_index_posts.up.sql",
        "000005_add_mood.up.sql",
    ]
    .iter()
    .map(|f| read(&format!("golang-migrate/{f}")))
    .collect();
    let out = round_trip("gm", Tool::GolangMigrate, "golang-migrate", None, &ups);
    let one = fs::read_to_string(out.join("1_create_users.sql")).expect("1");
    assert_eq!(
        one,
        format!(
            "{}-- @UNDO\n{}",
            read("golang-migrate/000001_create_users.up.sql"),
            read("golang-migrate/000001_create_users.down.sql")
        )
    );
    let two = fs::read_to_string(out.join("2_add_name.sql")).expect("2");
    assert!(two.contains(";\r\n-- @UNDO\r\nALTER"), "{two:?}");
    // No trailing `;` or newline: a newline goes before the marker, nothing else changes.
    let three = fs::read_to_string(out.join("3_create_posts.sql")).expect("3");
    assert_eq!(
        three,
        "CREATE TABLE posts (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES users (id))\n\
         -- @UNDO\nDROP TABLE posts"
    );
    // One CONCURRENTLY statement: golang-migrate sends it alone, autocommitted.
    let set = load_set(&out).expect("load");
    assert_eq!(
        set.iter().map(|m| m.no_transaction).collect::<Vec<_>>(),
        [false, false, false, true, false]
    );
    // The tutorial's own BEGIN/COMMIT wrapper becomes two comment lines, nothing else changes.
    let five = fs::read_to_string(out.join("5_add_mood.sql")).expect("5");
    let want = format!(
        "{}-- @UNDO\n{}",
        read("golang-migrate/000005_add_mood.up.sql"),
        read("golang-migrate/000005_add_mood.down.sql")
    )
    .replace("BEGIN;", "-- BEGIN;")
    .replace("COMMIT;", "-- COMMIT;");
    assert_eq!(five, want);
    let mapping = fs::read_to_string(out.join(MAPPING_FILE)).expect("mapping");
    assert!(mapping.contains("tool\tgolang-migrate\n"), "{mapping}");
    assert!(
        mapping.contains("1\t1\t000001_create_users.up.sql + 000001_create_users.down.sql\n"),
        "{mapping}"
    );
}

#[test]
fn sqlx_round_trip_with_no_transaction() {
    let ups: Vec<String> = [
        "20240101000001_create_orders.up.sql",
        "20240101000002_index_orders.up.sql",
    ]
    .iter()
    .map(|f| read(&format!("sqlx/{f}")))
    .collect();
    let out = round_trip("sqlx", Tool::Sqlx, "sqlx", None, &ups);
    let set = load_set(&out).expect("load");
    assert_eq!(set[0].version, 20240101000001);
    assert!(!set[0].no_transaction);
    assert!(set[1].no_transaction);
    let body = fs::read_to_string(&set[1].path).expect("read");
    assert!(body.starts_with("-- @NO_TRANSACTION\n-- no-transaction\nCREATE INDEX"));
}

#[test]
fn sqlx_simple_files_import_as_irreversible() {
    let out = tempfile::tempdir().expect("tempdir");
    let into = out.path().join("x");
    let done =
        import::import(Tool::Sqlx, &fixture("import", "sqlx-simple"), &into, None).expect("import");
    assert_eq!(done.len(), 2);
    let set = load_set(&into).expect("load");
    assert!(set.iter().all(|m| m.down.is_none()));
    assert!(set[1].no_transaction);
    assert_eq!(
        done[0].to_string(),
        "1_create_tags.sql -> 1_create_tags.sql"
    );
}

#[test]
fn goose_round_trip_with_statement_blocks_and_no_transaction() {
    let ups: Vec<String> = [
        "00001_create_accounts.sql",
        "00002_index_accounts.sql",
        "00003_add_owner.sql",
    ]
    .iter()
    .map(|f| before_marker(&fixture("import", &format!("goose/{f}")), "-- +goose Down"))
    .collect();
    let out = round_trip("goose", Tool::Goose, "goose", None, &ups);
    let set = load_set(&out).expect("load");
    assert_eq!(set.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(set[1].no_transaction && !set[0].no_transaction);
    let one = fs::read_to_string(&set[0].path).expect("read");
    assert!(!one.contains("+goose"), "markers stripped: {one}");
    assert!(one.contains("$$;\n\n-- @UNDO\nDROP FUNCTION"), "{one}");
    let three = fs::read(&set[2].path).expect("read");
    assert_eq!(
        three,
        b"ALTER TABLE accounts ADD COLUMN owner TEXT;\r\n-- @UNDO\r\nALTER TABLE accounts DROP COLUMN owner;\r\n"
    );
}

#[test]
fn dbmate_round_trip_with_transaction_false() {
    let ups: Vec<String> = [
        "20240102030405_create_items.sql",
        "20240102030406_index_items.sql",
        "20240102030407_add_price.sql",
    ]
    .iter()
    .map(|f| {
        before_marker(
            &fixture("import", &format!("dbmate/{f}")),
            "-- migrate:down",
        )
    })
    .collect();
    let out = round_trip("dbmate", Tool::Dbmate, "dbmate", None, &ups);
    let set = load_set(&out).expect("load");
    assert_eq!(set[0].version, 20240102030405);
    assert!(set[1].no_transaction && !set[2].no_transaction);
}

#[test]
fn flyway_round_trip_renumbers_dotted_versions() {
    let ups: Vec<String> = [
        "V1__create_books.sql",
        "V1_1__add_isbn.sql",
        "V1.2.1__index_isbn.sql",
        "more/V2__create_authors.sql",
        "more/V3__index_authors.sql",
    ]
    .iter()
    .map(|f| read(&format!("flyway/{f}")))
    .collect();
    let out = round_trip("flyway", Tool::Flyway, "flyway", None, &ups);
    let set = load_set(&out).expect("load");
    let names: Vec<String> = set
        .iter()
        .map(|m| {
            m.path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "1_create_books.sql",
            "2_add_isbn.sql",
            "3_index_isbn.sql",
            "4_create_authors.sql",
            "5_index_authors.sql"
        ]
    );
    assert!(set[2].no_transaction, "from V1.2.1__index_isbn.sql.conf");
    assert!(set[4].no_transaction, "Flyway's CONCURRENTLY detection");
    assert!(!set[3].no_transaction);
    let mapping = fs::read_to_string(out.join(MAPPING_FILE)).expect("mapping");
    assert!(
        mapping.contains("\n1.1\t2\tV1_1__add_isbn.sql + U1_1__add_isbn.sql\n"),
        "{mapping}"
    );
    assert!(mapping.contains("\n1.2.1\t3\tV1.2.1__index_isbn.sql + V1.2.1__index_isbn.sql.conf + U1.2.1__index_isbn.sql\n"), "{mapping}");
    assert!(
        mapping.contains("\n2\t4\tmore/V2__create_authors.sql + more/U2__create_authors.sql\n"),
        "{mapping}"
    );
}

#[test]
fn diesel_round_trip_with_metadata_toml() {
    let ups: Vec<String> = [
        "00000000000000_initial_setup",
        "2024-01-01-120000_create_notes",
        "2024-01-02-120000_index_notes",
    ]
    .iter()
    .map(|d| read(&format!("diesel/{d}/up.sql")))
    .collect();
    let out = round_trip("diesel", Tool::Diesel, "diesel", None, &ups);
    let set = load_set(&out).expect("load");
    // 00000000000000 is not a positive version: the set is renumbered in Diesel's order.
    assert_eq!(set.iter().map(|m| m.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(set[2].no_transaction);
    let mapping = fs::read_to_string(out.join(MAPPING_FILE)).expect("mapping");
    assert!(mapping.contains("\n20240101120000\t2\t"), "{mapping}");
}

#[test]
fn pop_round_trip_picks_the_dialect_variant() {
    let ups: Vec<String> = [
        "20240101000001_create_widgets.up.sql",
        "20240101000002_add_kind.postgres.up.sql",
        "20240101000003_index_widgets.autocommit.up.sql",
    ]
    .iter()
    .map(|f| read(&format!("pop/{f}")))
    .collect();
    let out = round_trip("pop", Tool::Pop, "pop", Some("postgres"), &ups);
    let set = load_set(&out).expect("load");
    assert!(set[1].up.contains("kind TEXT"));
    assert!(set[2].no_transaction, ".autocommit.");

    // The cockroach variant, and no dialect at all.
    let other = tempfile::tempdir().expect("tempdir");
    let into = other.path().join("crdb");
    import::import(Tool::Pop, &fixture("import", "pop"), &into, Some("crdb")).expect("import");
    let set = load_set(&into).expect("load");
    assert!(set[1].up.contains("kind STRING"), "{}", set[1].up);
    let p = import::import(
        Tool::Pop,
        &fixture("import", "pop"),
        &other.path().join("none"),
        None,
    )
    .expect_err("variants need --dialect");
    assert_eq!(p.len(), 6, "{p:#?}");
    assert!(p.iter().all(|p| p.message.contains("--dialect")));
    assert!(!other.path().join("none").exists());
    let p = import::import(
        Tool::Pop,
        &fixture("import", "pop"),
        &other.path().join("x"),
        Some("mysql"),
    )
    .expect_err("mysql is not ours");
    assert!(p[0].message.contains("expected `postgres` or `cockroach`"));
    let p = import::import(
        Tool::Goose,
        &fixture("import", "goose"),
        &other.path().join("y"),
        Some("postgres"),
    )
    .expect_err("dialect is pop's");
    assert!(p[0].message.contains("only applies to pop"));
}

/// Every file at fault is named, and nothing is written.
fn refused(tool: Tool, dir: &str, want: &[(&str, &str)]) {
    let out = tempfile::tempdir().expect("tempdir");
    let into = out.path().join("out");
    let problems = import::import(tool, &fixture("import", dir), &into, None).expect_err("refused");
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for (file, needle) in want {
        assert!(
            problems
                .iter()
                .any(|p| p.path.ends_with(file) && p.message.contains(needle)),
            "{file}: {needle}: {shown:#?}"
        );
    }
    assert_eq!(problems.len(), want.len(), "{shown:#?}");
    assert!(!into.exists(), "nothing written");
}

#[test]
fn refused_layouts_name_each_file() {
    refused(
        Tool::GolangMigrate,
        "refused/golang-migrate",
        &[
            ("1_a.up.sql", "2 up files"),
            ("01_b.up.sql", "2 up files"),
            ("2_orphan.down.sql", "without an up migration"),
        ],
    );
    refused(
        Tool::Goose,
        "refused/goose",
        &[
            ("00001_go_code.go", "Go migration"),
            ("00002_envsub.sql", "ENVSUB ON"),
            ("00003_no_up.sql", "SQL before `-- +goose Up`"),
            ("00003_no_up.sql", "no `-- +goose Up`"),
        ],
    );
    refused(
        Tool::Flyway,
        "refused/flyway",
        &[
            ("R__views.sql", "repeatable"),
            ("afterMigrate.sql", "callback"),
            ("V2__Callback.java", "Java"),
            ("V3__placeholder.sql", "placeholder"),
            ("U4__orphan.sql", "without an up migration"),
        ],
    );
    refused(
        Tool::Pop,
        "refused/pop",
        &[
            ("20240101000001_create.up.fizz", "fizz"),
            ("20240101000002_tmpl.up.sql", "Go template"),
        ],
    );
    refused(
        Tool::Dbmate,
        "refused/dbmate",
        &[
            ("20240101000001_before.sql", "SQL before `-- migrate:up`"),
            ("20240101000002_nomarker.sql", "SQL before `-- migrate:up`"),
            ("20240101000002_nomarker.sql", "no `-- migrate:up`"),
        ],
    );
    // The line is given where one line is at fault.
    let p = import::import(
        Tool::Goose,
        &fixture("import", "refused/goose"),
        &tempfile::tempdir().expect("tempdir").path().join("o"),
        None,
    )
    .expect_err("refused");
    let envsub = p
        .iter()
        .find(|p| p.message.contains("ENVSUB"))
        .expect("envsub");
    assert_eq!(envsub.line, Some(2));
    assert!(
        envsub.to_string().contains("00002_envsub.sql:2: "),
        "{envsub}"
    );
}

#[test]
fn never_overwrites_and_refuses_the_source_dir() {
    let out = tempfile::tempdir().expect("tempdir");
    let into = out.path().join("o");
    import::import(Tool::Goose, &fixture("import", "goose"), &into, None).expect("first");
    let before = fs::read(into.join("1_create_accounts.sql")).expect("read");
    let p =
        import::import(Tool::Goose, &fixture("import", "goose"), &into, None).expect_err("second");
    assert_eq!(p.len(), 4, "three files and the mapping: {p:#?}");
    assert!(p.iter().all(|p| p.message.contains("never overwrites")));
    assert_eq!(
        fs::read(into.join("1_create_accounts.sql")).expect("read"),
        before
    );
    // One existing file is enough to refuse everything.
    let partial = out.path().join("partial");
    fs::create_dir(&partial).expect("mkdir");
    fs::write(partial.join("2_index_accounts.sql"), "SELECT 1;").expect("write");
    let p = import::import(Tool::Goose, &fixture("import", "goose"), &partial, None)
        .expect_err("clash");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(fs::read_dir(&partial).expect("ls").count(), 1);
    let p = import::import(
        Tool::Goose,
        &fixture("import", "goose"),
        &fixture("import", "goose"),
        None,
    )
    .expect_err("into the source");
    assert!(p[0].message.contains("source directory"));
}

#[test]
fn detect_recognises_each_layout_and_not_ours() {
    for (dir, tool) in [
        ("golang-migrate", Tool::GolangMigrate),
        ("sqlx", Tool::GolangMigrate), // the same layout, imported identically
        ("goose", Tool::Goose),
        ("dbmate", Tool::Dbmate),
        ("flyway", Tool::Flyway),
        ("diesel", Tool::Diesel),
        ("pop", Tool::Pop),
    ] {
        assert_eq!(import::detect(&fixture("import", dir)), Some(tool), "{dir}");
    }
    let hint = import::layout_hint(&fixture("import", "golang-migrate")).expect("hint");
    assert!(
        hint.contains("golang-migrate's layout")
            && hint.contains("`crdb-migrate import --from golang-migrate ")
            && hint.contains("--into NEWDIR`"),
        "{hint}"
    );
    let out = tempfile::tempdir().expect("tempdir");
    let into = out.path().join("o");
    import::import(Tool::Goose, &fixture("import", "goose"), &into, None).expect("import");
    assert_eq!(import::detect(&into), None, "our own layout");
    assert_eq!(import::layout_hint(&into), None);
    assert_eq!(import::detect(&fixture("import", "sqlx-simple")), None);
}

// ---------------------------------------------------------------------------------------------
// History tables
// ---------------------------------------------------------------------------------------------

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn imported(tool: Tool, src: &str, dialect: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().expect("tempdir");
    let into = out.path().join("o");
    import::import(tool, &fixture("import", src), &into, dialect).expect("import");
    (out, into)
}

#[test]
fn golang_migrate_history_single_row_and_dirty() {
    let db = fresh_db("hist_gm");
    psql(
        &db.url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);
         INSERT INTO schema_migrations (version, dirty) VALUES (2, false);",
    );
    let (_keep, dir) = imported(Tool::GolangMigrate, "golang-migrate", None);
    runtime().block_on(async {
        let c = client(&db.url).await;
        let h = read_history(&c, Tool::GolangMigrate)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(h.applied, ["2"]);
        assert_eq!(h.applied_through.as_deref(), Some("2"));
        assert!(h.bad.is_empty());
        assert_eq!(map_versions(&dir, &h, Tool::GolangMigrate), Ok(vec![1, 2]));
        // dbmate shares the table name; a table with `dirty` is not dbmate's.
        assert_eq!(read_history(&c, Tool::Dbmate).await.expect("read"), None);
        assert_eq!(
            any_foreign_history(&c).await.expect("any"),
            Some((Tool::GolangMigrate, "schema_migrations".to_string(), 1))
        );
        psql(&db.url, "UPDATE schema_migrations SET dirty = true");
        let h = read_history(&c, Tool::GolangMigrate)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(h.bad.len(), 1);
        assert!(h.bad[0].contains("version 2 is dirty"), "{:?}", h.bad);
        psql(
            &db.url,
            "UPDATE schema_migrations SET version = 7, dirty = false",
        );
        let h = read_history(&c, Tool::GolangMigrate)
            .await
            .expect("read")
            .expect("table");
        let e = map_versions(&dir, &h, Tool::GolangMigrate).expect_err("no file 7");
        assert!(e.iter().any(|m| m.contains("version 7")), "{e:?}");
    });
}

#[test]
fn dbmate_and_pop_and_diesel_histories_are_their_rows() {
    let db = fresh_db("hist_rows");
    psql(
        &db.url,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) primary key);
         INSERT INTO schema_migrations (version) VALUES ('20240102030405'), ('20240102030406');
         CREATE TABLE schema_migration (version VARCHAR (14) NOT NULL);
         CREATE UNIQUE INDEX schema_migration_version_idx ON schema_migration (version);
         INSERT INTO schema_migration (version) VALUES ('20240101000001');
         CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
             version VARCHAR(50) PRIMARY KEY NOT NULL,
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20240101120000');",
    );
    let (_a, dbmate) = imported(Tool::Dbmate, "dbmate", None);
    let (_b, pop) = imported(Tool::Pop, "pop", Some("postgres"));
    let (_c, diesel) = imported(Tool::Diesel, "diesel", None);
    runtime().block_on(async {
        let c = client(&db.url).await;
        assert_eq!(
            read_history(&c, Tool::GolangMigrate).await.expect("read"),
            None
        );
        let h = read_history(&c, Tool::Dbmate)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(h.applied, ["20240102030405", "20240102030406"]);
        assert_eq!(
            map_versions(&dbmate, &h, Tool::Dbmate),
            Ok(vec![20240102030405, 20240102030406])
        );
        let h = read_history(&c, Tool::Pop)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(map_versions(&pop, &h, Tool::Pop), Ok(vec![20240101000001]));
        let h = read_history(&c, Tool::Diesel)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(h.applied, ["00000000000000", "20240101120000"]);
        assert_eq!(map_versions(&diesel, &h, Tool::Diesel), Ok(vec![1, 2]));
        // The mapping was written for Diesel: read as another tool's, it is refused.
        assert!(map_versions(&diesel, &h, Tool::Pop).is_err());
        assert_eq!(read_history(&c, Tool::Goose).await.expect("read"), None);
    });
}

#[test]
fn goose_history_latest_row_per_version_decides() {
    let db = fresh_db("hist_goose");
    psql(
        &db.url,
        "CREATE TABLE goose_db_version (
             id serial NOT NULL,
             version_id bigint NOT NULL,
             is_applied boolean NOT NULL,
             tstamp timestamp NULL default now(),
             PRIMARY KEY(id));
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);",
    );
    let (_keep, dir) = imported(Tool::Goose, "goose", None);
    runtime().block_on(async {
        let c = client(&db.url).await;
        // Only goose's own version-0 row: nothing applied, not an existing project.
        let h = read_history(&c, Tool::Goose)
            .await
            .expect("read")
            .expect("table");
        assert!(h.applied.is_empty() && h.rows == 0);
        assert_eq!(any_foreign_history(&c).await.expect("any"), None);
        psql(
            &db.url,
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES
                 (1, true), (2, true), (3, true), (3, false), (2, false), (2, true);",
        );
        let h = read_history(&c, Tool::Goose)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(
            h.applied,
            ["1", "2"],
            "3 was rolled back; 2 re-applied last"
        );
        assert_eq!(map_versions(&dir, &h, Tool::Goose), Ok(vec![1, 2]));
        let found = any_foreign_history(&c).await.expect("any").expect("some");
        assert_eq!(
            (found.0, found.1.as_str()),
            (Tool::Goose, "goose_db_version")
        );
    });
}

#[test]
fn flyway_history_failed_rows_undo_and_baseline() {
    let db = fresh_db("hist_flyway");
    psql(
        &db.url,
        &format!(
            "{FLYWAY_HISTORY_TABLE}
         INSERT INTO flyway_schema_history VALUES
             (1, '1', 'create books', 'SQL', 'V1__create_books.sql', 1, 'app', now(), 5, true),
             (2, '1.1', 'add isbn', 'SQL', 'V1_1__add_isbn.sql', 2, 'app', now(), 5, true),
             (3, '1.2.1', 'index isbn', 'SQL', 'V1.2.1__index_isbn.sql', 3, 'app', now(), 5, true),
             (4, '1.2.1', 'index isbn', 'UNDO_SQL', 'U1.2.1__index_isbn.sql', 4, 'app', now(), 5, true),
             (5, NULL, 'views', 'SQL', 'R__views.sql', 5, 'app', now(), 5, true);"
        ),
    );
    let (_keep, dir) = imported(Tool::Flyway, "flyway", None);
    runtime().block_on(async {
        let c = client(&db.url).await;
        let h = read_history(&c, Tool::Flyway).await.expect("read").expect("table");
        assert_eq!(h.applied, ["1", "1.1"]);
        assert!(h.bad.is_empty());
        assert_eq!(map_versions(&dir, &h, Tool::Flyway), Ok(vec![1, 2]));
        psql(
            &db.url,
            "INSERT INTO flyway_schema_history VALUES
                 (6, '2', 'create authors', 'SQL', 'V2__create_authors.sql', 6, 'app', now(), 5, false);",
        );
        let h = read_history(&c, Tool::Flyway).await.expect("read").expect("table");
        assert_eq!(h.bad.len(), 1);
        assert!(h.bad[0].contains("version 2 (V2__create_authors.sql) has success = false"), "{:?}", h.bad);
        // A baseline at 1.2.1 makes everything up to it applied.
        psql(
            &db.url,
            "DELETE FROM flyway_schema_history;
             INSERT INTO flyway_schema_history VALUES
                 (1, '1.2.1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'app', now(), 0, true),
                 (2, '2', 'create authors', 'SQL', 'V2__create_authors.sql', 6, 'app', now(), 5, true);",
        );
        let h = read_history(&c, Tool::Flyway).await.expect("read").expect("table");
        assert_eq!(h.applied_through.as_deref(), Some("1.2.1"));
        assert_eq!(map_versions(&dir, &h, Tool::Flyway), Ok(vec![1, 2, 3, 4]));
    });
}

#[test]
fn sqlx_history_failed_rows_are_bad() {
    let db = fresh_db("hist_sqlx");
    psql(
        &db.url,
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
             success BOOLEAN NOT NULL,
             checksum BYTEA NOT NULL,
             execution_time BIGINT NOT NULL);
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (20240101000001, 'create orders', true, '\\x00', 1);",
    );
    let (_keep, dir) = imported(Tool::Sqlx, "sqlx", None);
    runtime().block_on(async {
        let c = client(&db.url).await;
        let h = read_history(&c, Tool::Sqlx)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(map_versions(&dir, &h, Tool::Sqlx), Ok(vec![20240101000001]));
        psql(
            &db.url,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (20240101000002, 'index orders', false, '\\x00', 1);",
        );
        let h = read_history(&c, Tool::Sqlx)
            .await
            .expect("read")
            .expect("table");
        assert_eq!(h.applied, ["20240101000001"]);
        assert_eq!(h.bad.len(), 1);
        assert!(h.bad[0].contains("20240101000002"), "{:?}", h.bad);
    });
}

#[test]
fn no_foreign_history_in_a_fresh_database() {
    let db = fresh_db("hist_none");
    runtime().block_on(async {
        let c = client(&db.url).await;
        assert_eq!(any_foreign_history(&c).await.expect("any"), None);
        for tool in Tool::ALL {
            assert_eq!(read_history(&c, tool).await.expect("read"), None, "{tool}");
        }
    });
}

//! Unit tests of version handling, rendering, transaction unwrapping, detection and whole imports.

use super::convert::{render, unwrap_transaction};
use super::write::assign_versions;
use super::*;

#[test]
fn tool_names_round_trip() {
    for t in Tool::ALL {
        assert_eq!(t.to_string().parse::<Tool>(), Ok(t));
    }
    assert!("liquibase".parse::<Tool>().is_err());
}

#[test]
fn canonical_versions() {
    assert_eq!(canonical_version(Tool::Goose, "0001").as_deref(), Some("1"));
    assert_eq!(
        canonical_version(Tool::Flyway, "1_01").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        canonical_version(Tool::Flyway, "1.1.0").as_deref(),
        Some("1.1")
    );
    assert_eq!(canonical_version(Tool::Flyway, "1..2"), None);
    assert_eq!(
        canonical_version(Tool::Pop, "0001").as_deref(),
        Some("0001")
    );
    assert_eq!(canonical_version(Tool::Sqlx, "x"), None);
    assert!(version_key(Tool::Flyway, "1.10") > version_key(Tool::Flyway, "1.9"));
    assert!(version_key(Tool::Pop, "10") < version_key(Tool::Pop, "9"));
}

fn foreign(original: &str, order: OrderKey) -> Foreign {
    Foreign {
        original: original.into(),
        order,
        name: "x".into(),
        up: vec![],
        down: None,
        no_transaction: false,
        from: vec![PathBuf::from("x")],
        crlf: false,
    }
}

#[test]
fn versions_kept_or_renumbered() {
    let keep = [
        foreign("1", numeric_key("1")),
        foreign("20240101120000", numeric_key("20240101120000")),
    ];
    assert_eq!(assign_versions(&keep), [1, 20240101120000]);
    let big = [
        foreign("1", numeric_key("1")),
        foreign("12345678901234567890", numeric_key("12345678901234567890")),
    ];
    assert_eq!(assign_versions(&big), [1, 2]);
    // pop's string order puts 10 before 9: keeping them would change the order.
    let pop = [
        foreign("10", version_key(Tool::Pop, "10")),
        foreign("9", version_key(Tool::Pop, "9")),
    ];
    assert_eq!(assign_versions(&pop), [1, 2]);
    let zero = [
        foreign("0", numeric_key("0")),
        foreign("5", numeric_key("5")),
    ];
    assert_eq!(assign_versions(&zero), [1, 2]);
}

#[test]
fn render_adds_markers_in_the_sources_line_ending() {
    let p = Path::new("a.sql");
    let mut f = foreign("1", numeric_key("1"));
    f.up = lines_of(p, "SELECT 1;\r\nSELECT 2");
    f.down = Some(lines_of(p, "SELECT 3;\r\n"));
    f.no_transaction = true;
    f.crlf = true;
    let (body, origins) = render(&f);
    assert_eq!(
        body,
        "-- @NO_TRANSACTION\r\nSELECT 1;\r\nSELECT 2\r\n-- @UNDO\r\nSELECT 3;\r\n"
    );
    assert_eq!(origins.len(), 5);
    assert_eq!(origins[2], Some((p.to_path_buf(), 2)));
    assert_eq!(origins[3], None);
}

#[test]
fn problems_display_with_and_without_line() {
    assert_eq!(
        problem(Path::new("a.sql"), Some(3), "bad").to_string(),
        "a.sql:3: bad"
    );
    assert_eq!(
        problem(Path::new("a.sql"), None, "bad").to_string(),
        "a.sql: bad"
    );
}

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, body).expect("write");
}

#[test]
fn a_byte_order_mark_does_not_end_up_after_the_directive() {
    let src = tempfile::tempdir().expect("tempdir");
    write(
        src.path(),
        "V1__idx.sql",
        "\u{feff}CREATE INDEX CONCURRENTLY i ON t (a);\n",
    );
    write(
        src.path(),
        "V1__idx.sql.conf",
        "executeInTransaction=false\n",
    );
    let out = tempfile::tempdir().expect("tempdir");
    let done = import(Tool::Flyway, src.path(), &out.path().join("o"), None).expect("import");
    let body = std::fs::read_to_string(&done[0].to).expect("read");
    assert_eq!(
        body,
        "-- @NO_TRANSACTION\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
    );
}

#[test]
fn a_down_only_goose_file_imports_with_an_empty_forward() {
    let src = tempfile::tempdir().expect("tempdir");
    write(
        src.path(),
        "00001_x.sql",
        "-- +goose Up\n-- +goose Down\nDROP TABLE old;\n",
    );
    let out = tempfile::tempdir().expect("tempdir");
    let done = import(Tool::Goose, src.path(), &out.path().join("o"), None).expect("import");
    let body = std::fs::read_to_string(&done[0].to).expect("read");
    assert_eq!(body, "-- @UNDO\nDROP TABLE old;\n");
}

#[test]
fn a_wrapping_transaction_becomes_comments() {
    let p = Path::new("a.sql");
    let mut l = lines_of(p, "-- x\nBEGIN;\nCREATE TABLE a (x INT);\n  commit ;\n");
    unwrap_transaction(&mut l);
    let text: String = l.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        text,
        "-- x\n-- BEGIN;\nCREATE TABLE a (x INT);\n--   commit ;\n"
    );
    for kept in [
        "BEGIN; CREATE TABLE a (x INT);\nCOMMIT;\n",
        "BEGIN;\nCREATE TABLE a (x INT);\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON a (x);\n",
        "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n",
        "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;\n",
    ] {
        let mut l = lines_of(p, kept);
        unwrap_transaction(&mut l);
        let text: String = l.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text, kept);
    }
}

#[test]
fn converted_files_that_would_not_load_point_at_the_source_line() {
    let src = tempfile::tempdir().expect("tempdir");
    write(
        src.path(),
        "1_a.up.sql",
        "CREATE TABLE a (x INT);\nCOMMIT;\nBEGIN;\nSELECT 1;\n",
    );
    let out = tempfile::tempdir().expect("tempdir");
    let p = import(Tool::GolangMigrate, src.path(), &out.path().join("o"), None)
        .expect_err("transaction control");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].path.ends_with("1_a.up.sql"));
    assert_eq!((p[0].line, p[1].line), (Some(2), Some(3)));
    assert!(p[1].message.contains("`BEGIN`"), "{p:?}");
    assert!(!out.path().join("o").exists());
}

#[test]
fn layout_and_loader_problems_are_reported_together() {
    let src = tempfile::tempdir().expect("tempdir");
    write(
        src.path(),
        "00001_a.sql",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n",
    );
    write(
        src.path(),
        "00002_b.sql",
        "-- +goose Up\nSELECT 1;\nROLLBACK;\n",
    );
    write(src.path(), "00003_c.sql", "-- +goose Up\nSELECT 3;\n");
    let out = tempfile::tempdir().expect("tempdir");
    let p = import(Tool::Goose, src.path(), &out.path().join("o"), None).expect_err("two");
    let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    assert_eq!(p.len(), 2, "{shown:#?}");
    assert!(shown[0].contains("00001_a.sql:2: "), "{shown:#?}");
    assert!(shown[1].contains("00002_b.sql:3: `ROLLBACK`"), "{shown:#?}");
}

#[test]
fn detect_sniffs_goose_and_dbmate_contents() {
    let goose = tempfile::tempdir().expect("tempdir");
    write(goose.path(), "1_a.sql", "SELECT 1;\n");
    write(
        goose.path(),
        "20240101_Create-Users.sql",
        "-- +goose Up\nSELECT 1;\n",
    );
    assert_eq!(detect(goose.path()), Some(Tool::Goose));
    let dbmate = tempfile::tempdir().expect("tempdir");
    write(
        dbmate.path(),
        "20240101_a.sql",
        "-- migrate:up\nSELECT 1;\n",
    );
    assert_eq!(detect(dbmate.path()), Some(Tool::Dbmate));
    let ours = tempfile::tempdir().expect("tempdir");
    write(ours.path(), "1_a.sql", "SELECT 1;\n-- @UNDO\nSELECT 2;\n");
    write(ours.path(), "2_b.up.sql", "SELECT 1;\n"); // one stray file is not a layout
    assert_eq!(detect(ours.path()), None);
    let diesel = tempfile::tempdir().expect("tempdir");
    write(diesel.path(), "2024-01-01-000000_a/up.sql", "SELECT 1;\n");
    assert_eq!(detect(diesel.path()), Some(Tool::Diesel));
    assert!(layout_hint(diesel.path()).is_some_and(|h| h.contains("--from diesel")));
}

#[test]
fn a_file_too_big_to_load_is_refused_by_import_too() {
    let src = tempfile::tempdir().expect("tempdir");
    write(src.path(), "00001_x.sql", "-- +goose Up\nSELECT 1;\n");
    let big = src.path().join("00002_big.sql");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(crate::source::MAX_FILE_BYTES + 1))
        .expect("sparse file");
    let out = tempfile::tempdir().expect("tempdir");
    let problems = import(Tool::Goose, src.path(), &out.path().join("o"), None)
        .expect_err("over the loader's cap");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, big);
    assert!(problems[0].message.contains("16 MiB"), "{problems:?}");
    assert!(!out.path().join("o").exists(), "nothing is written");
}

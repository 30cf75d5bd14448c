//! Unit tests of names and of loading a directory.

use super::*;
use proptest::prelude::*;
use std::fs;

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create dir");
    }
    fs::write(&path, body).expect("write file");
    path
}

#[test]
fn names() {
    assert_eq!(parse_name("001_x.sql"), Ok((1, "x".to_string())));
    assert_eq!(
        parse_name("20240101120000_add_users_2.sql"),
        Ok((20240101120000, "add_users_2".to_string()))
    );
    assert_eq!(
        parse_name("9223372036854775807_max.sql"),
        Ok((i64::MAX, "max".to_string()))
    );
    for bad in [
        "x.sql",
        "1.sql",
        "_x.sql",
        "1_.sql",
        "0_x.sql",
        "000_x.sql",
        "9223372036854775808_x.sql",
        "1_Add.sql",
        "1_a-b.sql",
        "1_a b.sql",
        "+1_x.sql",
        "1_x.SQL",
        "1_x.sql.bak",
    ] {
        let e = parse_name(bad).expect_err(bad);
        assert!(e.contains("<version>_<description>.sql"), "{bad}: {e}");
    }
    assert!(parse_name("0_x.sql").unwrap_err().contains("positive"));
    assert!(
        parse_name("9223372036854775808_x.sql")
            .unwrap_err()
            .contains("64-bit")
    );
    assert!(parse_name("1_Add.sql").unwrap_err().contains("lowercase"));
}

#[test]
fn slugs_and_file_names() {
    assert_eq!(
        slugify("Add users table!").as_deref(),
        Some("add_users_table")
    );
    assert_eq!(slugify("  --a  b--  ").as_deref(), Some("a_b"));
    assert_eq!(slugify("Ünïcode 2"), Some("n_code_2".to_string()));
    assert_eq!(slugify("!!!"), None);
    assert_eq!(slugify(""), None);
    assert_eq!(
        file_name(20240101120000, "add_users"),
        "20240101120000_add_users.sql"
    );
    let slug = slugify("Créer la table").expect("slug");
    assert!(parse_name(&file_name(1, &slug)).is_ok());
}

#[test]
fn load_sorted_and_ignoring_what_it_should() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "10_ten.sql", b"SELECT 10;");
    write(dir.path(), "002_two.sql", b"SELECT 2;");
    write(dir.path(), "README.md", b"not sql");
    write(dir.path(), ".hidden.sql", b"whatever");
    write(dir.path(), "other/5_five.sql", b"SELECT 5;");
    let set = load(dir.path(), None).expect("loads");
    let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
    assert_eq!(versions, [2, 10]);
    // An environment that has no directory changes nothing.
    assert_eq!(load(dir.path(), Some("prod")).expect("loads"), set);
    assert_eq!(load(dir.path(), Some("")).expect("loads"), set);
}

#[test]
fn environment_merge_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_a.sql", b"SELECT 1;");
    write(dir.path(), "3_c.sql", b"SELECT 3;");
    write(dir.path(), "dev/2_seed.sql", b"INSERT INTO t VALUES (2);");
    write(dir.path(), "dev/4_more.sql", b"SELECT 4;");
    write(dir.path(), "prod/2_other.sql", b"SELECT 2;");
    let set = load(dir.path(), Some("dev")).expect("loads");
    let names: Vec<&str> = set.iter().map(|m| m.slug.as_str()).collect();
    assert_eq!(names, ["a", "seed", "c", "more"]);
    assert!(set[1].path.ends_with("dev/2_seed.sql"));
    let set = load(dir.path(), None).expect("loads");
    assert_eq!(set.len(), 2);
}

#[test]
fn duplicate_version_across_environment_names_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let common = write(dir.path(), "2_common.sql", b"SELECT 1;");
    let env = write(dir.path(), "prod/002_env.sql", b"SELECT 2;");
    let p = load(dir.path(), Some("prod")).expect_err("duplicate");
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("version 2 is used twice"));
    assert!(p[0].message.contains(&common.display().to_string()));
    assert!(p[0].message.contains(&env.display().to_string()));
}

#[test]
fn missing_and_empty_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(load(dir.path(), None), Ok(Vec::new()));
    let missing = dir.path().join("nope");
    let p = load(&missing, None).expect_err("missing");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, missing);
    assert!(p[0].message.contains("does not exist"));
}

#[test]
fn many_problems_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_ok.sql", b"SELECT 1;");
    write(dir.path(), "Bad.sql", b"SELECT 1;");
    write(dir.path(), "0_zero.sql", b"SELECT 1;");
    write(dir.path(), "2_bin.sql", b"\xfe\xff");
    write(
        dir.path(),
        "3_markers.sql",
        b"SELECT 1;\n-- @UNDO\n-- @UNDO\n-- @NO_TRANSACTION\n",
    );
    write(dir.path(), "4_dir.sql", b"-- @WHAT\nSELECT 1;");
    write(dir.path(), "5_empty.sql", b"");
    write(dir.path(), "5_dup.sql", b"SELECT 5;");
    let p = load(dir.path(), None).expect_err("problems");
    let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    let count = |file: &str| p.iter().filter(|p| p.path.ends_with(file)).count();
    assert_eq!(count("Bad.sql"), 1, "{shown:#?}");
    assert_eq!(count("0_zero.sql"), 1, "{shown:#?}");
    assert_eq!(count("2_bin.sql"), 1, "{shown:#?}");
    assert_eq!(count("3_markers.sql"), 2, "{shown:#?}");
    assert_eq!(count("4_dir.sql"), 1, "{shown:#?}");
    // 5_empty: an empty file loads (a placeholder); only the duplicate version is a problem.
    assert_eq!(count("5_empty.sql"), 1, "{shown:#?}");
    assert_eq!(count("1_ok.sql"), 0, "{shown:#?}");
    assert_eq!(p.len(), 7, "{shown:#?}");
    // Sorted file by file, and displayed with the line when there is one.
    let mut sorted = p.clone();
    sorted.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    assert_eq!(p, sorted);
    assert!(shown.iter().any(|s| s.ends_with("4_dir.sql:1: unknown directive `-- @WHAT`; the directives are `-- @NO_TRANSACTION`, `-- @REPEAT_UNTIL_ZERO`, `-- @STATEMENT_TIMEOUT <duration>`, `-- @LOCK_TIMEOUT <duration>` and `-- @CONTRACT` (and the `-- @UNDO` marker)")), "{shown:#?}");
}

#[cfg(unix)]
#[test]
fn unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "1_secret.sql", b"SELECT 1;");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&path).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let p = load(dir.path(), None).expect_err("unreadable");
    assert!(p[0].message.contains("cannot read the file"), "{p:?}");
}

#[cfg(unix)]
#[test]
fn links_are_followed_and_only_regular_files_are_read() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let target = write(
        elsewhere.path(),
        "real.sql",
        b"SELECT 1;\n-- @UNDO\nSELECT 2;\n",
    );
    symlink(&target, dir.path().join("1_linked.sql")).expect("symlink");
    let set = load(dir.path(), None).expect("a link to a file loads");
    assert_eq!(set[0].version, 1);
    symlink("/dev/zero", dir.path().join("2_zero.sql")).expect("symlink");
    fs::create_dir(dir.path().join("3_dir.sql")).expect("mkdir");
    let p = load(dir.path(), None).expect_err("a device");
    assert_eq!(p.len(), 1, "the directory is skipped: {p:?}");
    assert!(p[0].path.ends_with("2_zero.sql"), "{p:?}");
    assert!(p[0].message.contains("not a regular file"), "{p:?}");
}

#[test]
fn a_file_over_the_cap_is_a_problem_and_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "1_huge.sql", b"");
    // Sparse: the length is what is checked, before anything is read.
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(MAX_FILE_BYTES + 1))
        .expect("set_len");
    let p = load(dir.path(), None).expect_err("too big");
    assert!(
        p[0].message
            .contains(&format!("is {} bytes", MAX_FILE_BYTES + 1)),
        "{p:?}"
    );
    assert!(p[0].message.contains("16 MiB"), "{p:?}");
}

proptest! {
    #[test]
    fn version_order_is_numeric_order(
        versions in proptest::collection::btree_set(1i64..1_000_000, 1..8),
        zeros in proptest::collection::vec(0usize..4, 8),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, v) in versions.iter().enumerate() {
            let name = format!("{}{v}_m{i}.sql", "0".repeat(zeros[i]));
            write(dir.path(), &name, b"SELECT 1;");
        }
        let set = load(dir.path(), None).expect("loads");
        let got: Vec<i64> = set.iter().map(|m| m.version).collect();
        let want: Vec<i64> = versions.into_iter().collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn slugify_gives_valid_names(description in ".{0,30}") {
        if let Some(slug) = slugify(&description) {
            prop_assert!(parse_name(&file_name(1, &slug)).is_ok());
        }
    }
}

#[test]
fn all_environments_merge_each_directory_with_the_common_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_users.sql", b"SELECT 1;");
    write(dir.path(), "3_common.sql", b"SELECT 3;");
    write(dir.path(), "staging/2_seed.sql", b"SELECT 2;");
    write(dir.path(), "production/2_seed.sql", b"SELECT 2;");
    write(dir.path(), ".git/9_x.sql", b"SELECT 9;");
    let set = load_all_environments(dir.path(), None).expect("loads");
    let got: Vec<(i64, bool)> = set
        .iter()
        .map(|m| (m.version, m.path.parent() == Some(dir.path())))
        .collect();
    // Version 2 twice: each environment may use it, once each; sorted by version then path.
    assert_eq!(got, [(1, true), (2, false), (2, false), (3, true)]);
    assert!(set[1].path.ends_with("production/2_seed.sql"));
    // With an environment, exactly `load`.
    assert_eq!(
        load_all_environments(dir.path(), Some("staging")),
        load(dir.path(), Some("staging"))
    );
    // A clash with a common file is reported once, a common problem once.
    write(dir.path(), "production/01_clash.sql", b"SELECT 1;");
    write(dir.path(), "4_bad.sql", b"SELECT 1;\n-- @UNDO\n-- @UNDO\n");
    let p = load_all_environments(dir.path(), None).expect_err("clash");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p.iter().any(|p| p.path.ends_with("production/01_clash.sql")
        && p.message.contains("version 1 is used twice")));
    assert_eq!(
        p.iter().filter(|p| p.path.ends_with("4_bad.sql")).count(),
        1
    );
    let missing = dir.path().join("nope");
    assert_eq!(
        load_all_environments(&missing, None)
            .expect_err("missing")
            .len(),
        1
    );
}

#[test]
fn taken_versions_walks_every_environment_by_name_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "1_a.sql", b"\xff not even utf-8");
    write(dir.path(), "staging/20240101000000_s.sql", b"SELECT 1;");
    write(dir.path(), "README.md", b"x");
    write(dir.path(), ".hidden/5_h.sql", b"SELECT 1;");
    let taken = taken_versions(dir.path()).expect("walks");
    assert_eq!(taken.into_iter().collect::<Vec<_>>(), [1, 20240101000000]);
    assert!(taken_versions(&dir.path().join("nope")).is_err());
}

#[test]
fn ten_thousand_files_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 10_000i64;
    for v in 1..=n {
        let body = format!(
            "-- @LOCK_TIMEOUT 5s\nCREATE TABLE IF NOT EXISTS t{v} (id INT PRIMARY KEY);\n\
             CREATE INDEX IF NOT EXISTS t{v}_i ON t{v} (id);\n-- @UNDO\nDROP TABLE t{v};\n"
        );
        write(dir.path(), &format!("{v:05}_m{v}.sql"), body.as_bytes());
    }
    write(dir.path(), &format!("dev/{}_seed.sql", n + 1), b"SELECT 1;");
    let set = load_all_environments(dir.path(), None).expect("loads");
    assert_eq!(set.len() as i64, n + 1);
    assert!(set.windows(2).all(|w| w[0].version < w[1].version));
    assert_eq!(set[9_999].down_statements.as_ref().map(Vec::len), Some(1));
    let warnings: usize = set.iter().map(|m| crate::lint::lint(m).len()).sum();
    assert!(warnings >= 1, "the dev seed-data file has no undo");
    assert_eq!(
        taken_versions(dir.path()).expect("walks").len() as i64,
        n + 1
    );
}

//! `verify --strict` through the binary on the lint calibration corpus (tests/fixtures/lint): the
//! safe CockroachDB-dialect set passes strict CI, and every unsafe file, added to it, fails it
//! with exit 20 naming the file, while plain `verify` only warns (exit 0).

mod support;

use std::fs;
use std::path::Path;

use support::{bin, run};

const SAFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lint/safe");
const UNSAFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lint/unsafe");

fn verify(dir: &Path, strict: bool) -> support::Output {
    let mut cmd = bin();
    cmd.env("MIGRATIONS_DIR", dir).arg("verify");
    if strict {
        cmd.arg("--strict");
    }
    run(&mut cmd)
}

#[test]
fn the_safe_corpus_passes_strict_verify() {
    let out = verify(Path::new(SAFE), true);
    out.expect_code(0);
    assert!(
        out.stdout.contains("migration file(s) OK"),
        "{}",
        out.stdout
    );
}

#[test]
fn each_unsafe_file_fails_strict_verify_and_only_warns_without_it() {
    let mut unsafe_files: Vec<_> = fs::read_dir(UNSAFE)
        .expect("the unsafe corpus")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    unsafe_files.sort();
    assert!(unsafe_files.len() >= 10, "{unsafe_files:?}");
    for file in unsafe_files {
        let dir = tempfile::tempdir().expect("tempdir");
        for safe in fs::read_dir(SAFE)
            .expect("safe corpus")
            .filter_map(|e| e.ok())
        {
            fs::copy(safe.path(), dir.path().join(safe.file_name())).expect("copy");
        }
        let name = file.file_name().expect("name");
        fs::copy(&file, dir.path().join(name)).expect("copy");
        let lenient = verify(dir.path(), false);
        lenient.expect_code(0);
        let strict = verify(dir.path(), true);
        strict.expect_code(20);
        let name = name.to_string_lossy();
        assert!(
            strict.stdout.contains(name.as_ref()),
            "the warning names {name}: {}",
            strict.stdout
        );
        assert!(strict.stderr.contains("--strict"), "{}", strict.stderr);
    }
}

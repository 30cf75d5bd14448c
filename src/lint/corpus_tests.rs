//! The calibration corpus in `tests/fixtures/lint/`: CockroachDB-dialect files in the style
//! real projects use. The safe set raises no warning (but the one down-only file's
//! `empty_forward` note); each unsafe file, linted after the safe set, raises a `risk`.

use super::*;
use crate::source::load;
use std::path::Path;

fn corpus(kind: &str) -> Vec<Migration> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(kind);
    match load(&dir, None) {
        Ok(set) => set,
        Err(p) => panic!("the {kind} corpus does not load: {p:#?}"),
    }
}

#[test]
fn the_safe_corpus_raises_nothing() {
    let safe = corpus("safe");
    assert!(safe.len() >= 20, "{}", safe.len());
    let warnings = lint_all(&safe);
    let unexpected: Vec<&Warning> = warnings
        .iter()
        .filter(|w| !(w.rule == "empty_forward" && w.severity == Severity::Note))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert_eq!(
        warnings.len(),
        1,
        "the down-only file's note: {warnings:#?}"
    );
    assert!(!has_risk(&warnings));
}

#[test]
fn every_unsafe_file_raises_a_risk() {
    let safe = corpus("safe");
    let unsafe_files = corpus("unsafe");
    assert!(unsafe_files.len() >= 15);
    let mut seen = std::collections::BTreeSet::new();
    for m in &unsafe_files {
        let mut set = safe.clone();
        set.push(m.clone());
        let risks: Vec<Warning> = lint_all(&set)
            .into_iter()
            .filter(|w| w.version == m.version && w.severity == Severity::Risk)
            .collect();
        assert!(!risks.is_empty(), "{} raises no risk", m.path.display());
        for w in &risks {
            assert!(w.message.contains(&m.path.display().to_string()), "{w:?}");
            seen.insert(w.rule);
        }
    }
    // Every compatibility rule is exercised by the corpus.
    for rule in [
        "breaking_drop_table",
        "breaking_drop_column",
        "breaking_rename_table",
        "breaking_rename_column",
        "breaking_alter_column_type",
        "breaking_add_not_null_column",
        "breaking_set_not_null",
        "breaking_new_constraint",
        "breaking_drop_default",
        "add_column_then_use",
        "schema_change_after_write",
        "alter_column_type",
        "multiple_schema_changes",
        "drop_column_with_other_ddl",
    ] {
        assert!(seen.contains(rule), "{rule} never fired: {seen:?}");
    }
}

//! Unit tests of the rollback plan with the undo the ledger keeps: versions without a file,
//! `--to-image`, checksums, irreversible and unstored undo, and resuming a cut undo.
use super::*;
use crate::source::{parse, undo_checksum};
use crate::store::ledger::StoredUndo;

fn file(v: i64, undo: Option<&str>) -> Migration {
    let body = match undo {
        Some(u) => format!("CREATE TABLE t{v} (id INT);\n-- @UNDO\n{u}\n"),
        None => format!("CREATE TABLE t{v} (id INT);\n"),
    };
    let path = format!("migrations/{v}_m{v}.sql");
    parse(std::path::Path::new(&path), body.as_bytes()).expect("test file parses")
}

fn kept(sql: &str, no_transaction: bool) -> StoredUndo {
    StoredUndo::Sql {
        sql: sql.into(),
        no_transaction,
        checksum: undo_checksum(sql, no_transaction),
    }
}

/// The row `m` leaves behind when it is applied: its checksum and its undo.
fn row_of(m: &Migration) -> AppliedRow {
    AppliedRow {
        version: m.version,
        description: m.description.clone(),
        applied_at: None,
        checksum: Some(m.checksum.clone()),
        duration_ms: None,
        applied_by: None,
        fence: None,
        dirty: false,
        statements_done: 0,
        undo: match &m.down {
            Some(d) => kept(d, m.no_transaction),
            None => StoredUndo::Irreversible,
        },
    }
}

/// Files 1..=newer (the newer image) and the rows of applying them all.
fn applied(newer: i64) -> (Vec<Migration>, Vec<AppliedRow>) {
    let files: Vec<_> = (1..=newer)
        .map(|v| file(v, Some(&format!("DROP TABLE t{v};"))))
        .collect();
    let rows = files.iter().map(row_of).collect();
    (files, rows)
}

fn versions(p: &Plan) -> Vec<i64> {
    p.steps.iter().map(|s| s.migration.version).collect()
}

fn undo_text(s: &Step) -> Vec<String> {
    s.migration
        .down_statements
        .iter()
        .flatten()
        .map(|st| st.text.clone())
        .collect()
}

#[test]
fn a_version_without_a_file_is_undone_with_its_stored_undo() {
    let (files, rows) = applied(4);
    let older = &files[..2];
    for how in [Rollback::Count(2), Rollback::Target(2), Rollback::ToImage] {
        let p = down(older, &rows, how, Allow::default()).expect("plans");
        assert_eq!(versions(&p), [4, 3], "{how:?}");
        assert_eq!(p.target, 2);
        assert!(matches!(p.steps[0].migration, Cow::Owned(_)));
        assert_eq!(undo_text(&p.steps[0]), ["DROP TABLE t4"]);
        assert_eq!(p.steps[0].direction, Direction::Down);
        assert_eq!(p.steps[0].migration.checksum, files[3].checksum);
    }
    // Across the boundary: the older image's own file undoes version 2.
    let p = down(older, &rows, Rollback::Count(3), Allow::default()).expect("plans");
    assert_eq!(versions(&p), [4, 3, 2]);
    assert!(matches!(p.steps[2].migration, Cow::Borrowed(_)));
}

#[test]
fn with_the_file_here_the_file_and_the_stored_undo_agree() {
    let (files, rows) = applied(3);
    let with_file = down(&files, &rows, Rollback::Target(0), Allow::default()).expect("plans");
    let stored = down(&files[..0], &rows, Rollback::Target(0), Allow::default());
    // No file at all is refused by --to-image but not by --target 0: compare the undo SQL.
    let stored = stored.expect("plans");
    for (a, b) in with_file.steps.iter().zip(&stored.steps) {
        assert_eq!(undo_text(a), undo_text(b));
        assert_eq!(a.migration.no_transaction, b.migration.no_transaction);
    }
    assert_eq!(versions(&with_file), versions(&stored));
}

#[test]
fn a_stored_undo_that_does_not_match_its_checksum_or_its_file_is_refused_naming_it() {
    let (files, mut rows) = applied(3);
    rows[2].undo = StoredUndo::Sql {
        sql: "DROP TABLE t3; DROP TABLE users;".into(),
        no_transaction: false,
        checksum: undo_checksum("DROP TABLE t3;", false),
    };
    // The mode counts too.
    rows[1].undo = StoredUndo::Sql {
        sql: "DROP TABLE t2;".into(),
        no_transaction: true,
        checksum: undo_checksum("DROP TABLE t2;", false),
    };
    for set in [&files[..1], &files[..]] {
        let e = down(set, &rows, Rollback::Target(1), Allow::default()).unwrap_err();
        let Error::Disagreement(d) = e else {
            panic!("{e:?}")
        };
        let named: Vec<i64> = d
            .iter()
            .map(|d| match d {
                Disagreement::StoredUndoBad { version, .. } => *version,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(named, [3, 2]);
        assert!(d[0].to_string().contains("version 3"), "{}", d[0]);
    }
    // Intact but different from the file here (its checksum consistent with its own text).
    let (files, mut rows) = applied(2);
    rows[1].undo = kept("DROP TABLE t2 CASCADE;", false);
    let e = down(&files, &rows, Rollback::Count(1), Allow::default()).unwrap_err();
    assert!(e.to_string().contains("differs from the undo of"), "{e}");
}

#[test]
fn to_image_is_a_no_op_when_nothing_newer_is_applied() {
    let (files, rows) = applied(3);
    let p = down(&files, &rows, Rollback::ToImage, Allow::default()).expect("plans");
    assert!(p.steps.is_empty());
    assert_eq!(p.target, 3);
    // Applied only up to an older version than the image's newest: nothing to undo either.
    let p = down(&files, &rows[..1], Rollback::ToImage, Allow::default()).expect("plans");
    assert!(p.steps.is_empty());
}

#[test]
fn to_image_refuses_unstored_and_irreversible_newer_versions_naming_each() {
    let (files, mut rows) = applied(4);
    rows[2].undo = StoredUndo::NotStored;
    rows[3].undo = StoredUndo::Irreversible;
    let e = down(&files[..2], &rows, Rollback::ToImage, Allow::default()).unwrap_err();
    let Error::Disagreement(d) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        d.iter()
            .map(|d| match d {
                Disagreement::CannotUndo {
                    version,
                    irreversible,
                    ..
                } => (*version, *irreversible),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        [(4, true), (3, false)]
    );
    assert!(e.to_string().contains("irreversible"), "{e}");
    assert!(e.to_string().contains("before crdb-migrate kept"), "{e}");
    // Asked by count, the same: the ledger says it cannot be undone from here (exit 32).
    assert!(matches!(
        down(&files[..2], &rows, Rollback::Count(1), Allow::default()),
        Err(Error::Disagreement(_))
    ));
    // An irreversible file of this image is a request that cannot be met (exit 20).
    let (mut files, rows) = applied(2);
    files[1].down = None;
    assert!(matches!(
        down(&files, &rows, Rollback::Count(1), Allow::default()),
        Err(Error::Refused(Refusal::MissingUndo(_)))
    ));
    // An image without files never means "undo everything".
    assert!(matches!(
        down(&[], &rows, Rollback::ToImage, Allow::default()),
        Err(Error::Refused(Refusal::NoFilesInImage))
    ));
}

#[test]
fn a_cut_no_transaction_undo_resumes_after_the_statements_done() {
    let nt = parse(
        std::path::Path::new("migrations/3_nt.sql"),
        b"-- @NO_TRANSACTION\nCREATE TABLE a (id INT);\nCREATE TABLE b (id INT);\n-- @UNDO\nDROP TABLE b;\nDROP TABLE a;\n",
    )
    .expect("parses");
    let (mut files, mut rows) = applied(2);
    rows.push(row_of(&nt));
    // One undo statement done: journaled as -(1 + 1).
    rows[2].dirty = true;
    rows[2].statements_done = -2;
    files.push(nt);
    for set in [&files[..], &files[..2]] {
        let p = down(set, &rows, Rollback::Count(1), Allow::default()).expect("resumes");
        assert_eq!(versions(&p), [3]);
        assert_eq!(p.steps[0].resume_from, 1);
        let p = down(set, &rows, Rollback::ToImage, Allow::default());
        if set.len() == 2 {
            assert_eq!(p.map(|p| p.steps[0].resume_from).ok(), Some(1));
        }
    }
    // migrate does not resume an undo: the dirty mark stands.
    assert!(matches!(
        up(&files, &rows, None, Allow::default()),
        Err(Error::Disagreement(_))
    ));
    // A dirty forward migration below is still no rollback's business.
    rows[2].statements_done = 1;
    assert!(matches!(
        down(&files, &rows, Rollback::Count(1), Allow::default()),
        Err(Error::Disagreement(_))
    ));
}

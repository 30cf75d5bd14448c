//! Unit tests of the plan: steps, disagreements, targets, rollbacks and phases.
use super::*;
use proptest::prelude::*;

fn mig(v: i64, down: bool) -> Migration {
    Migration {
        version: v,
        slug: format!("m{v}"),
        description: format!("m{v}"),
        path: format!("migrations/{v}_m{v}.sql").into(),
        up: format!("CREATE TABLE t{v} (id INT)"),
        down: down.then(|| format!("DROP TABLE t{v}")),
        no_transaction: false,
        checksum: format!("sum{v}"),
        ..Migration::fixture(v)
    }
}

fn row(v: i64) -> AppliedRow {
    AppliedRow {
        version: v,
        description: format!("m{v}"),
        applied_at: None,
        checksum: Some(format!("sum{v}")),
        duration_ms: None,
        applied_by: None,
        fence: None,
        dirty: false,
        statements_done: 0,
        undo: Default::default(),
    }
}

fn versions(p: &Plan) -> Vec<i64> {
    p.steps.iter().map(|s| s.migration.version).collect()
}

#[test]
fn up_applies_pending_in_order_up_to_target() {
    let set: Vec<_> = (1..=5).map(|v| mig(v, true)).collect();
    let p = up(&set, &[row(1), row(2)], None, Allow::default()).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![3, 4, 5]));
    let p = up(&set, &[row(1)], Some(3), Allow::default()).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![2, 3]));
    assert_eq!(p.map(|p| p.target), Some(3));
}

#[test]
fn up_refuses_a_target_below_current_and_unknown_targets() {
    let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
    assert!(matches!(
        up(&set, &[row(1), row(2)], Some(1), Allow::default()),
        Err(Error::Refused(_))
    ));
    assert!(matches!(
        up(&set, &[], Some(7), Allow::default()),
        Err(Error::Refused(_))
    ));
}

#[test]
fn drift_unknown_dirty_and_out_of_order_are_disagreements() {
    let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
    let mut drifted = row(1);
    drifted.checksum = Some("other".into());
    assert!(matches!(
        up(&set, &[drifted], None, Allow::default()),
        Err(Error::Disagreement(_))
    ));
    // NULL checksum (a row adopted from a three-column ledger) is not drift.
    let mut adopted = row(1);
    adopted.checksum = None;
    assert!(up(&set, &[adopted], None, Allow::default()).is_ok());
    // Unknown applied version.
    assert!(matches!(
        up(&set, &[row(1), row(9)], None, Allow::default()),
        Err(Error::Disagreement(_))
    ));
    let allow = Allow {
        newer_schema: true,
        ..Allow::default()
    };
    let p = up(&set, &[row(1), row(2), row(3), row(9)], None, allow).ok();
    assert_eq!(p.map(|p| p.steps.len()), Some(0));
    // Dirty transactional migration.
    let mut dirty = row(2);
    dirty.dirty = true;
    assert!(matches!(
        up(&set, &[row(1), dirty], None, Allow::default()),
        Err(Error::Disagreement(_))
    ));
    // Out of order.
    assert!(matches!(
        up(&set, &[row(1), row(3)], None, Allow::default()),
        Err(Error::Disagreement(_))
    ));
    let allow = Allow {
        out_of_order: true,
        ..Allow::default()
    };
    let p = up(&set, &[row(1), row(3)], None, allow).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![2]));
}

#[test]
fn dirty_no_transaction_migration_resumes() {
    let mut set: Vec<_> = (1..=2).map(|v| mig(v, true)).collect();
    set[1].no_transaction = true;
    let mut dirty = row(2);
    dirty.dirty = true;
    dirty.statements_done = 2;
    let p = up(&set, &[row(1), dirty], None, Allow::default()).ok();
    assert_eq!(p.map(|p| p.steps[0].resume_from), Some(2));
}

#[test]
fn rollback_by_count_and_target_newest_first() {
    let set: Vec<_> = (1..=4).map(|v| mig(v, true)).collect();
    let rows: Vec<_> = (1..=4).map(row).collect();
    let p = down(&set, &rows, Rollback::Count(2), Allow::default()).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![4, 3]));
    assert_eq!(p.map(|p| p.target), Some(2));
    let p = down(&set, &rows, Rollback::Target(0), Allow::default()).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![4, 3, 2, 1]));
    let p = down(&set, &rows, Rollback::Target(3), Allow::default()).ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![4]));
}

#[test]
fn rollback_refuses_when_any_undo_is_missing() {
    let set = vec![mig(1, true), mig(2, false), mig(3, true)];
    let rows: Vec<_> = (1..=3).map(row).collect();
    assert!(matches!(
        down(&set, &rows, Rollback::Count(3), Allow::default()),
        Err(Error::Refused(_))
    ));
    assert!(down(&set, &rows, Rollback::Count(1), Allow::default()).is_ok());
}

#[test]
fn rollback_ignores_pending_older_files() {
    let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
    let p = down(
        &set,
        &[row(1), row(3)],
        Rollback::Count(1),
        Allow::default(),
    )
    .ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![3]));
}

#[test]
fn rollback_count_must_match_what_is_applied() {
    let set: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
    let rows: Vec<_> = (1..=3).map(row).collect();
    for n in [0, 4, 10] {
        assert!(
            matches!(
                down(&set, &rows, Rollback::Count(n), Allow::default()),
                Err(Error::Refused(_))
            ),
            "{n}"
        );
    }
    assert!(down(&set, &rows, Rollback::Count(3), Allow::default()).is_ok());
}

fn contract(mut m: Migration) -> Migration {
    m.contract = true;
    m
}

#[test]
fn phases_parse_and_name_what_is_accepted() {
    assert_eq!(Phase::parse("expand"), Ok(Phase::Expand));
    assert_eq!(Phase::parse(" Contract "), Ok(Phase::Contract));
    let e = Phase::parse("later").unwrap_err();
    assert!(
        e.contains("expand or contract") && e.contains("later"),
        "{e}"
    );
}

#[test]
fn expand_stops_before_the_first_contract_migration() {
    // 1 applied; 2, 3 expand; 4 contract; 5 plain (after the boundary: contract phase too).
    let set = vec![
        mig(1, true),
        mig(2, true),
        mig(3, true),
        contract(mig(4, true)),
        mig(5, true),
    ];
    let p = up(&set, &[row(1)], None, Allow::default()).map(|p| p.in_phase(Some(Phase::Expand)));
    let p = p.ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![2, 3]));
    assert_eq!(p.as_ref().map(|p| p.target), Some(3));
    assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(2));
    assert_eq!(p.as_ref().and_then(Plan::boundary), Some(4));
    // Contract (and unset) apply the rest: everything pending.
    for phase in [Some(Phase::Contract), None] {
        let p = up(&set, &[row(1), row(2), row(3)], None, Allow::default())
            .map(|p| p.in_phase(phase))
            .ok();
        assert_eq!(p.as_ref().map(versions), Some(vec![4, 5]), "{phase:?}");
        assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(0));
        assert_eq!(p.as_ref().map(|p| p.target), Some(5));
        assert_eq!(p.as_ref().and_then(Plan::boundary), Some(4));
    }
}

#[test]
fn expand_with_a_contract_migration_next_does_nothing_and_a_target_still_caps() {
    let set = vec![mig(1, true), contract(mig(2, true)), mig(3, true)];
    let p = up(&set, &[row(1)], None, Allow::default())
        .map(|p| p.in_phase(Some(Phase::Expand)))
        .ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![]));
    assert_eq!(p.as_ref().map(|p| p.target), Some(1));
    assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(2));
    // Without a contract migration, expand is everything.
    let plain: Vec<_> = (1..=3).map(|v| mig(v, true)).collect();
    let p = up(&plain, &[], Some(2), Allow::default())
        .map(|p| p.in_phase(Some(Phase::Expand)))
        .ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![1, 2]));
    assert_eq!(p.as_ref().map(|p| p.target), Some(2));
    assert_eq!(p.as_ref().and_then(Plan::boundary), None);
    // A contract migration beyond the target is not a boundary of this plan.
    let p = up(&set, &[], Some(1), Allow::default())
        .map(|p| p.in_phase(Some(Phase::Expand)))
        .ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![1]));
    assert_eq!(p.as_ref().map(Plan::contract_waiting), Some(0));
}

#[test]
fn a_rollback_is_never_cut_by_a_phase() {
    let set = vec![mig(1, true), contract(mig(2, true))];
    let p = down(
        &set,
        &[row(1), row(2)],
        Rollback::Target(0),
        Allow::default(),
    )
    .map(|p| p.in_phase(Some(Phase::Expand)))
    .ok();
    assert_eq!(p.as_ref().map(versions), Some(vec![2, 1]));
    assert_eq!(p.as_ref().and_then(Plan::boundary), None);
}

#[test]
fn boundary_counts_the_expand_part() {
    let set = vec![mig(1, true), contract(mig(2, true)), contract(mig(3, true))];
    assert_eq!(
        boundary(&set),
        Boundary {
            expand: 1,
            first_contract: Some(2)
        }
    );
    assert_eq!(
        boundary(&set[..1]),
        Boundary {
            expand: 1,
            first_contract: None
        }
    );
}

proptest! {
    /// Whatever is applied, `up` yields the unapplied files in ascending version order.
    #[test]
    fn up_steps_are_sorted_and_exactly_the_pending(
        versions in proptest::collection::btree_set(1i64..i64::MAX, 0..30),
        applied_count in 0usize..30,
    ) {
        let set: Vec<_> = versions.iter().map(|v| mig(*v, true)).collect();
        let n = applied_count.min(set.len());
        let rows: Vec<_> = set[..n].iter().map(|m| row(m.version)).collect();
        let p = up(&set, &rows, None, Allow::default());
        prop_assert!(p.is_ok());
        let got: Vec<i64> = p.map(|p| p.steps.iter().map(|s| s.migration.version).collect()).unwrap_or_default();
        let want: Vec<i64> = set[n..].iter().map(|m| m.version).collect();
        prop_assert_eq!(got, want);
    }
}

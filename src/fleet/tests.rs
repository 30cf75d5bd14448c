//! Unit tests of the fleet's pure parts: target lines, `{target}` substitution, the exit rule.

use super::summary::{Summary, Verdict, Worst};
use super::targets::{self, Origin, Template, is_name};
use crate::error::Error;
use crate::report::{Outcome, Report};

const FILE: Origin<'static> = Origin {
    source: "targets.txt",
    unit: "line",
};

fn parse(text: &str, url: &str) -> crate::error::Result<Vec<targets::Target>> {
    let template = Template::new(Some(url))?;
    targets::parse(targets::lines(text), &FILE, &template)
}

#[test]
fn names_are_checked() {
    for ok in ["a", "tenant_1", "T-2", "_x", &"a".repeat(63)] {
        assert!(is_name(ok), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a b",
        "a/b",
        "a?b",
        "a'b",
        "a%20",
        "a.b",
        "a;b",
        &"a".repeat(64),
    ] {
        assert!(!is_name(bad), "{bad}");
    }
}

#[test]
fn a_name_goes_at_the_placeholder_in_the_path_or_options_else_replaces_the_database() {
    let got = |url: &str| parse("acme", url).unwrap()[0].url().to_string();
    assert_eq!(
        got("postgresql://u:pw@h:5432/{target}?sslmode=disable"),
        "postgresql://u:pw@h:5432/acme?sslmode=disable"
    );
    assert_eq!(
        got("postgresql://u@h/app?options=-c%20search_path%3D{target}"),
        "postgresql://u@h/app?options=-c%20search_path%3Dacme"
    );
    assert_eq!(
        got("postgresql://u@h/app?options=-c%20search_path%3D%7Btarget%7D"),
        "postgresql://u@h/app?options=-c%20search_path%3Dacme"
    );
    assert_eq!(
        got("postgresql://u@h/app?sslmode=disable"),
        "postgresql://u@h/acme?sslmode=disable"
    );
    assert_eq!(got("postgresql://u@h"), "postgresql://u@h/acme");
}

#[test]
fn the_placeholder_elsewhere_is_refused_naming_database_url() {
    for url in [
        "postgresql://{target}@h/app",
        "postgresql://u@{target}/app",
        "postgresql://u@h/app?application_name={target}",
    ] {
        let e = Template::new(Some(url)).unwrap_err().to_string();
        assert!(e.starts_with("DATABASE_URL"), "{e}");
    }
}

#[test]
fn the_query_runs_with_the_placeholder_taken_out() {
    let out = |url: &str| {
        Template::new(Some(url))
            .unwrap()
            .without_placeholder()
            .unwrap()
    };
    assert_eq!(
        out("postgresql://u@h/{target}?sslmode=disable"),
        "postgresql://u@h?sslmode=disable"
    );
    assert_eq!(
        out("postgresql://u@h/app?sslmode=disable&options=-c%20search_path%3D{target}"),
        "postgresql://u@h/app?sslmode=disable"
    );
    assert_eq!(
        out("postgresql://u@h/app?options=-c%20search_path%3D{target}%20-c%20work_mem%3D4MB"),
        "postgresql://u@h/app?options=-c%20work_mem=4MB"
    );
}

#[test]
fn bad_lines_and_duplicates_are_refused_naming_the_lines() {
    let url = "postgresql://u@h/{target}";
    let e = parse("# c\nok\n\nbad name\n", url).unwrap_err().to_string();
    assert!(e.starts_with("targets.txt line 4:"), "{e}");
    let e = parse("a\nb\nA\n", url).unwrap_err().to_string();
    assert!(e.starts_with("targets.txt lines 1 and 3:"), "{e}");
    let e = parse("postgresql://u:pw@h:1/x?bogus=1\n", url)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("targets.txt line 1:") && !e.contains("pw"),
        "{e}"
    );
}

#[test]
fn a_url_target_is_shown_without_user_or_password() {
    let t = parse(
        "postgresql://me:secret@db1:5432/app?sslmode=disable",
        "postgresql://u@h/x",
    )
    .unwrap();
    assert_eq!(t[0].name(), "db1:5432/app");
    assert_eq!(
        t[0].url(),
        "postgresql://me:secret@db1:5432/app?sslmode=disable"
    );
    assert!(!format!("{t:?}").contains("secret"));
}

fn outcome(versions: Vec<i64>, result: crate::error::Result<()>) -> Outcome {
    Outcome {
        report: Report {
            versions,
            ..Report::default()
        },
        result,
    }
}

fn lost() -> Error {
    Error::Unreachable {
        attempts: 1,
        waited: std::time::Duration::ZERO,
        last: "refused".into(),
    }
}

fn bad() -> Error {
    Error::Config {
        name: "x".into(),
        message: "y".into(),
    }
}

#[test]
fn the_exit_code_is_the_first_permanent_failure_in_list_order_else_the_first_transient() {
    let (mut s, mut w) = (Summary::default(), Worst::default());
    // Outcomes arrive in completion order, not list order.
    assert_eq!(
        s.fold(&mut w, 3, "d", outcome(vec![], Err(lost()))).name(),
        "failed"
    );
    assert_eq!(
        s.fold(&mut w, 0, "a", outcome(vec![1], Ok(()))),
        Verdict::Applied
    );
    assert_eq!(
        s.fold(&mut w, 1, "b", outcome(vec![], Ok(()))),
        Verdict::UpToDate
    );
    s.fold(&mut w, 4, "e", outcome(vec![], Err(bad())));
    s.fold(&mut w, 2, "c", outcome(vec![], Err(bad())));
    assert_eq!((s.applied, s.up_to_date, s.failed), (1, 1, 3));
    let order: Vec<&str> = s.failed_targets.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(order, ["c", "d", "e"]);
    assert_eq!(s.clone().result(w, false).unwrap_err().exit().code(), 20);

    let (mut s, mut w) = (Summary::default(), Worst::default());
    s.fold(&mut w, 0, "a", outcome(vec![], Err(lost())));
    assert_eq!(s.result(w, false).unwrap_err().exit().code(), 10);
    assert!(super::worst([Ok(()), Ok(())]).is_ok());
}

#[test]
fn a_signal_that_left_targets_unfinished_is_143() {
    let (mut s, mut w) = (Summary::default(), Worst::default());
    s.fold(&mut w, 0, "a", outcome(vec![1], Ok(())));
    s.not_started = 2;
    assert_eq!(s.clone().result(w, true).unwrap_err().exit().code(), 143);
    let (s, w) = (Summary::default(), Worst::default());
    assert!(s.result(w, true).is_ok());
}

//! Unit tests of the configuration: variables named in errors, overrides.
use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn bad_duration_names_the_variable() {
    let e = Config::from_vars(
        vars(&[("MIGRATE_WAIT_TIMEOUT", "abc")]),
        Overrides::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("MIGRATE_WAIT_TIMEOUT"), "{e}");
}

#[test]
fn progress_interval_and_job_wait_timeout() {
    let c = Config::from_vars(vars(&[]), Overrides::default()).unwrap();
    assert_eq!(c.progress_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.job_wait_timeout, Duration::from_secs(600));
    let c = Config::from_vars(
        vars(&[
            ("MIGRATE_PROGRESS_INTERVAL", "0"),
            ("MIGRATE_JOB_WAIT_TIMEOUT", "90s"),
        ]),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.progress_interval, None);
    assert_eq!(c.job_wait_timeout, Duration::from_secs(90));
    for name in ["MIGRATE_PROGRESS_INTERVAL", "MIGRATE_JOB_WAIT_TIMEOUT"] {
        let err = Config::from_vars(vars(&[(name, "soon")]), Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with(name), "{err}");
    }
}

#[test]
fn lock_timeout_retries_and_phase() {
    let c = Config::from_vars(vars(&[]), Overrides::default()).unwrap();
    assert_eq!(c.lock_timeout, None);
    assert_eq!(c.lock_retries, 5);
    assert_eq!(c.phase, None);
    let c = Config::from_vars(
        vars(&[
            ("MIGRATE_LOCK_TIMEOUT", "200ms"),
            ("MIGRATE_LOCK_RETRIES", "0"),
            ("MIGRATE_PHASE", "expand"),
        ]),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.lock_timeout, Some(Duration::from_millis(200)));
    assert_eq!(c.lock_retries, 0);
    assert_eq!(c.phase, Some(Phase::Expand));
    for (name, bad) in [
        ("MIGRATE_LOCK_TIMEOUT", "soon"),
        ("MIGRATE_LOCK_RETRIES", "-1"),
        ("MIGRATE_LOCK_RETRIES", "101"),
        ("MIGRATE_PHASE", "both"),
    ] {
        let err = Config::from_vars(vars(&[(name, bad)]), Overrides::default()).unwrap_err();
        assert!(err.to_string().starts_with(name), "{err}");
    }
}

#[test]
fn options_override_the_environment() {
    let c = Config::from_vars(
        vars(&[("MIGRATIONS_DIR", "/env"), ("MIGRATE_TARGET_VERSION", "5")]),
        Overrides {
            migrations_dir: Some("/flag".into()),
            ..Overrides::default()
        },
    )
    .ok()
    .map(|c| (c.migrations_dir, c.target_version));
    assert_eq!(c, Some((PathBuf::from("/flag"), Some(5))));
}

#[test]
fn a_bad_table_name_names_the_variable() {
    let e = Config::from_vars(vars(&[("MIGRATE_TABLE", "Bad-Name")]), Overrides::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("MIGRATE_TABLE: "), "{e}");
}

#[test]
fn debug_hides_the_url() {
    let c = Config::new(Some("postgresql://u:hunter2@h/db".into()), "m");
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn fleet_settings_are_checked_each_naming_its_variable() {
    let c = Config::from_vars(vars(&[]), Overrides::default()).unwrap();
    assert_eq!(c.fleet, FleetSettings::default());
    assert_eq!(c.fleet.parallelism, 4);
    let c = Config::from_vars(
        vars(&[
            ("MIGRATE_TARGETS_QUERY", "SELECT 1"),
            ("MIGRATE_PARALLELISM", "16"),
            ("MIGRATE_SHARDS", "3"),
            ("JOB_COMPLETION_INDEX", "2"),
            ("MIGRATE_CANARY_TARGETS", "1"),
            ("MIGRATE_MAX_FAILURES", "5"),
        ]),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        c.fleet.targets,
        Some(TargetSource::Query("SELECT 1".into()))
    );
    assert_eq!(
        (c.fleet.parallelism, c.fleet.shards, c.fleet.shard),
        (16, 3, 2)
    );
    assert_eq!((c.fleet.canary, c.fleet.max_failures), (1, Some(5)));
    let err = |pairs: &[(&str, &str)]| {
        Config::from_vars(vars(pairs), Overrides::default())
            .unwrap_err()
            .to_string()
    };
    assert!(err(&[("MIGRATE_PARALLELISM", "0")]).starts_with("MIGRATE_PARALLELISM"));
    assert!(err(&[("MIGRATE_SHARDS", "x")]).starts_with("MIGRATE_SHARDS"));
    assert!(err(&[("MIGRATE_SHARDS", "3")]).starts_with("JOB_COMPLETION_INDEX"));
    assert!(
        err(&[("MIGRATE_SHARDS", "3"), ("JOB_COMPLETION_INDEX", "3")])
            .starts_with("JOB_COMPLETION_INDEX")
    );
    assert!(err(&[("MIGRATE_CANARY_TARGETS", "-1")]).starts_with("MIGRATE_CANARY_TARGETS"));
    assert!(err(&[("MIGRATE_MAX_FAILURES", "0")]).starts_with("MIGRATE_MAX_FAILURES"));
    let both = err(&[
        ("MIGRATE_TARGETS_FILE", "t.txt"),
        ("MIGRATE_TARGETS_QUERY", "SELECT 1"),
    ]);
    assert!(
        both.contains("MIGRATE_TARGETS_FILE") && both.contains("MIGRATE_TARGETS_QUERY"),
        "{both}"
    );
    // --targets stands for MIGRATE_TARGETS_FILE, so it conflicts with a query too.
    let o = Overrides {
        targets_file: Some("t.txt".into()),
        ..Overrides::default()
    };
    let e = Config::from_vars(vars(&[("MIGRATE_TARGETS_QUERY", "SELECT 1")]), o).unwrap_err();
    assert!(e.to_string().contains("MIGRATE_TARGETS_QUERY"), "{e}");
    // An Indexed Job's index is ignored without shards.
    let c = Config::from_vars(vars(&[("JOB_COMPLETION_INDEX", "7")]), Overrides::default());
    assert_eq!(c.unwrap().fleet.shard, 0);
}

#[test]
fn on_drift_defaults_to_warn_and_a_bad_value_names_the_variable() {
    let c = Config::from_vars(vars(&[]), Overrides::default()).unwrap();
    assert_eq!(c.on_drift, OnDrift::Warn);
    let c = Config::from_vars(
        vars(&[("MIGRATE_ON_DRIFT", "Refuse")]),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.on_drift, OnDrift::Refuse);
    let err =
        Config::from_vars(vars(&[("MIGRATE_ON_DRIFT", "stop")]), Overrides::default()).unwrap_err();
    assert!(err.to_string().starts_with("MIGRATE_ON_DRIFT"), "{err}");
    assert_eq!(crate::exit::of(&err) as i32, 20);
}

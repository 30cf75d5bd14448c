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

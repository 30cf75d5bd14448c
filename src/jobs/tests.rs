//! Unit tests of the schema-change job logic: status meanings, the job query, text lines, waits.

use super::*;

/// The statuses [`find_sql`] selects (every non-terminal one).
const LIVE: [&str; 9] = [
    "pending",
    "running",
    "retry-running",
    "reverting",
    "retry-reverting",
    "cancel-requested",
    "paused",
    "pause-requested",
    "revert-failed",
];

fn job(id: i64, status: &str, tables: &[&str]) -> Job {
    from_values(
        id,
        Some(status.into()),
        Some(format!(
            "CREATE INDEX ON defaultdb.public.{} (x)",
            tables.join("")
        )),
        Some(0.25),
        None,
        None,
        Some(tables.iter().map(|t| Some(t.to_string())).collect()),
    )
}

#[test]
fn exact_find_sql() {
    let one_line: String = find_sql().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        one_line,
        "SELECT j.job_id, j.status, j.description, j.fraction_completed, j.running_status, j.error, \
         ARRAY(SELECT t.name FROM crdb_internal.tables AS t WHERE t.database_name = current_database() \
         AND t.table_id = ANY (j.descriptor_ids) ORDER BY t.name) AS tables \
         FROM crdb_internal.jobs AS j WHERE j.job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') \
         AND j.status IN ('pending', 'running', 'retry-running', 'reverting', 'retry-reverting', \
         'cancel-requested', 'paused', 'pause-requested', 'revert-failed') \
         AND EXISTS (SELECT 1 FROM crdb_internal.tables AS t WHERE t.database_name = current_database() \
         AND t.table_id = ANY (j.descriptor_ids)) ORDER BY j.created, j.job_id"
    );
    for s in LIVE {
        assert!(find_sql().contains(&format!("'{s}'")), "{s}");
        assert_ne!(motion(s), Motion::Over, "{s}");
    }
    assert!(!find_sql().contains("GC"));
}

#[test]
fn parses_nulls_and_empty_values() {
    let j = from_values(
        7,
        None,
        None,
        Some(f64::NAN),
        Some(String::new()),
        Some(String::new()),
        None,
    );
    assert_eq!(
        j,
        Job {
            id: 7,
            status: String::new(),
            description: String::new(),
            fraction: None,
            running_status: None,
            tables: vec![],
            error: None,
        }
    );
    let j = from_values(
        8,
        Some("running".into()),
        Some("ALTER TABLE d.public.users ADD COLUMN x INT8".into()),
        Some(0.415),
        Some("backfilling".into()),
        None,
        Some(vec![Some("users".into()), None]),
    );
    assert_eq!(j.tables, vec!["users".to_string()]);
    assert_eq!(
        j.text(),
        "job 8 running 41% on users: ALTER TABLE d.public.users ADD COLUMN x INT8"
    );
}

#[test]
fn statuses_mean_wait_stop_or_over() {
    assert_eq!(motion("running"), Motion::Forward);
    assert_eq!(motion("pending"), Motion::Forward);
    assert_eq!(motion("reverting"), Motion::Back);
    assert_eq!(motion("paused"), Motion::Stopped);
    assert_eq!(motion("revert-failed"), Motion::Stopped);
    assert_eq!(motion("failed"), Motion::Over);
    assert_eq!(motion("succeeded"), Motion::Over);
    let jobs = [
        job(1, "running", &["a"]),
        job(2, "paused", &["b"]),
        job(3, "reverting", &["c"]),
    ];
    let ids: Vec<i64> = moving(&jobs).iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![1, 3]);
}

#[test]
fn a_stuck_job_on_a_table_of_the_migration_is_exit_32_naming_show_job() {
    let tables =
        words_of("ALTER TABLE \"Users\" ADD COLUMN email STRING; CREATE INDEX ON orders (x)");
    let paused = job(42, "paused", &["Users"]);
    let err = check(std::slice::from_ref(&paused), &tables).unwrap_err();
    assert_eq!(err.exit().code(), 32);
    let msg = err.to_string();
    assert!(
        msg.contains("42") && msg.contains("SHOW JOB 42") && msg.contains("paused"),
        "{msg}"
    );
    for status in ["failed", "reverting", "revert-failed", "pause-requested"] {
        assert!(
            check(&[job(1, status, &["orders"])], &tables).is_err(),
            "{status}"
        );
    }
    // Running (waited for), over, or on another table: not ours to refuse.
    assert!(check(&[job(1, "running", &["orders"])], &tables).is_ok());
    assert!(check(&[job(1, "succeeded", &["orders"])], &tables).is_ok());
    assert!(check(&[job(1, "canceled", &["orders"])], &tables).is_ok());
    assert!(check(&[job(1, "paused", &["invoices"])], &tables).is_ok());
}

#[test]
fn table_names_compare_bare_and_case_insensitively() {
    let j = job(1, "paused", &["users"]);
    assert!(j.touches(&["public.users".into()]));
    assert!(j.touches(&["db.public.\"USERS\"".into()]));
    assert!(!j.touches(&["users2".into()]));
    assert_eq!(
        words_of("UPDATE t SET a = 'users' -- users\n"),
        vec!["a", "set", "t", "update"]
    );
}

#[test]
fn job_polls_stop_at_the_timeout() {
    let ms = Duration::from_millis;
    assert_eq!(next_poll(Some(ms(500)), ms(0), ms(10_000)), Some(ms(500)));
    assert_eq!(
        next_poll(Some(ms(5_000)), ms(9_000), ms(10_000)),
        Some(ms(1_000))
    );
    assert_eq!(next_poll(Some(ms(500)), ms(10_000), ms(10_000)), None);
    assert_eq!(next_poll(None, ms(0), ms(10_000)), Some(ms(2_000)));
}

#[test]
fn show_jobs_tables_come_from_qualified_names_of_this_database() {
    use super::listing::tables_in;
    assert_eq!(
        tables_in("ALTER TABLE app.public.users ADD COLUMN x INT8", "app"),
        vec!["users"]
    );
    assert_eq!(
        tables_in(
            "CREATE INDEX i ON \"App\".public.\"Orders\" (x); ALTER TABLE other.public.t DROP COLUMN y",
            "App"
        ),
        vec!["Orders"]
    );
    // Another database's table, an unqualified name, a 4-part name's tail: not ours.
    assert!(tables_in("ALTER TABLE other.public.users ADD COLUMN x INT8", "app").is_empty());
    assert!(tables_in("ALTER TABLE users ADD COLUMN x INT8", "app").is_empty());
    assert!(tables_in("SELECT x.app.public.users", "app").is_empty());
    assert_eq!(
        tables_in("ALTER TABLE APP.public.b, app.s.a RENAME TO app.s.a", "app"),
        vec!["a", "b"]
    );
}

#[test]
fn show_jobs_lists_the_same_live_schema_changes() {
    let sql = super::listing::show_jobs_sql();
    // Whole descriptions: a set of jobs is shown, not the abbreviated listing.
    assert!(
        sql.contains("FROM [SHOW JOBS SELECT job_id FROM [SHOW JOBS]"),
        "{sql}"
    );
    assert!(!sql.contains("crdb_internal"), "{sql}");
    for s in LIVE {
        assert!(sql.contains(&format!("'{s}'")), "{s}");
    }
    assert!(
        sql.contains("'SCHEMA CHANGE', 'NEW SCHEMA CHANGE'"),
        "{sql}"
    );
}

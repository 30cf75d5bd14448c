//! Unit tests of the progress queries, the rows read from them and the text lines.

use super::cockroach::{cockroach_sql, ours};
use super::postgres::postgres_sql;
use super::*;

fn c(done: i64, total: i64) -> Counter {
    Counter::new(Some(done), Some(total))
}

const NONE: Counter = Counter {
    done: None,
    total: None,
};

#[test]
fn postgres_query_reads_every_progress_view_for_one_pid() {
    let sql = postgres_sql();
    for view in [
        "pg_stat_progress_create_index",
        "pg_stat_progress_cluster",
        "pg_stat_progress_vacuum",
        "pg_stat_progress_analyze",
        "pg_stat_progress_copy",
    ] {
        assert!(
            sql.contains(&format!("FROM {view} WHERE pid = $1")),
            "{view}"
        );
    }
    assert_eq!(sql.matches("UNION ALL").count(), 4);
    // The vacuum columns PostgreSQL 17 renamed are not named.
    assert!(!sql.contains("dead_tuples"));
    assert!(sql.starts_with(
        "SELECT command, phase, relid::regclass::text AS relation, blocks_done, blocks_total, tuples_done, tuples_total,"
    ));
}

#[test]
fn cockroach_query_is_our_users_live_schema_change_jobs() {
    assert_eq!(
        cockroach_sql(),
        "SELECT job_id, job_type, status, running_status, fraction_completed, \
         ((EXTRACT(EPOCH FROM now()) - EXTRACT(EPOCH FROM created::TIMESTAMPTZ)) * 1000)::INT8 AS age_ms \
         FROM crdb_internal.jobs \
         WHERE job_type IN ('SCHEMA CHANGE', 'NEW SCHEMA CHANGE') \
         AND status IN ('pending', 'running', 'retry-running') \
         AND user_name = current_user \
         ORDER BY created DESC, job_id DESC"
    );
}

#[test]
fn create_index_line_shows_the_phase_percent_and_counts() {
    let p = Sample::from_pg(
        "CREATE INDEX",
        "building index: loading tuples in tree",
        Some("big".into()),
        [c(100, 100), c(2_100_000, 5_000_000), NONE, c(0, 0), c(0, 0)],
    );
    assert_eq!(
        p.text(),
        "building index: loading tuples in tree: 42% (2.1M of 5.0M tuples)"
    );
    assert_eq!(p.fraction, Some(0.42));
    // Scanning the table: tuples_total is 0 (unknown), blocks carry the progress.
    let p = Sample::from_pg(
        "CREATE INDEX",
        "building index: scanning table",
        None,
        [c(41_000, 100_000), c(0, 0), NONE, c(0, 0), c(0, 0)],
    );
    assert_eq!(
        p.text(),
        "building index: scanning table: 41% (41.0K of 100.0K blocks)"
    );
    assert_eq!(p.headline(), Some((c(41_000, 100_000), Unit::Blocks)));
}

#[test]
fn counts_without_a_total_and_nothing_at_all() {
    let copy = Sample::from_pg(
        "COPY FROM",
        "copying",
        None,
        [
            NONE,
            Counter::new(Some(1234), None),
            c(5_000_000, 0),
            NONE,
            NONE,
        ],
    );
    assert_eq!(copy.fraction, None);
    assert_eq!(copy.text(), "copying: (1.2K tuples)");
    let init = Sample::from_pg(
        "CREATE INDEX",
        "initializing",
        None,
        [c(0, 0), c(0, 0), NONE, c(0, 0), c(0, 0)],
    );
    assert_eq!(init.text(), "initializing");
    assert_eq!(init.headline(), None);
}

#[test]
fn cockroach_job_line_uses_running_status_and_fraction() {
    let j = Sample::from_job(
        42,
        "NEW SCHEMA CHANGE",
        "running",
        Some("backfilling"),
        Some(0.415),
        Some(900),
    );
    assert_eq!(j.text(), "new schema change job 42 (backfilling): 41%");
    let j = Sample::from_job(7, "SCHEMA CHANGE", "running", Some(""), None, Some(1));
    assert_eq!(j.text(), "schema change job 7 (running)");
}

#[test]
fn only_jobs_created_since_our_flight_started_are_ours() {
    let job = |id, age| Sample::from_job(id, "SCHEMA CHANGE", "running", None, None, age);
    let pg = Sample::from_pg("VACUUM", "scanning heap", None, [NONE; 5]);
    let kept = ours(
        vec![job(1, Some(5_000)), job(2, Some(12_000)), job(3, None), pg],
        Duration::from_secs(10),
    );
    let ids: Vec<_> = kept.iter().map(|p| p.job_id).collect();
    assert_eq!(ids, vec![Some(1), None]);
}

#[test]
fn compact_numbers() {
    assert_eq!(compact(950), "950");
    assert_eq!(compact(12_345), "12.3K");
    assert_eq!(compact(2_100_000), "2.1M");
    assert_eq!(compact(5_000_000_000), "5.0G");
    assert_eq!(compact(-1500), "-1.5K");
    assert_eq!(percent(0.999), 99);
    assert_eq!(percent(1.5), 100);
}

#[test]
fn the_show_jobs_progress_query_differs_only_in_its_source() {
    let sql = super::cockroach::show_jobs_sql();
    assert_eq!(
        sql.replace("FROM [SHOW JOBS]", "FROM crdb_internal.jobs")
            .replace("NULL::STRING AS running_status", "running_status"),
        cockroach_sql()
    );
    assert!(!sql.contains("crdb_internal"), "{sql}");
}

//! Unit tests of the fenced writes: each extends our lease, binds as many parameters as its
//! SQL has placeholders, and the fence check raises.
use super::*;
use crate::store::TableName;

fn tables() -> Tables {
    Tables::new(&TableName::default())
}

#[test]
fn every_fenced_write_extends_our_unexpired_lease() {
    let t = tables();
    for sql in [
        Record::sql(&t),
        Unrecord::sql(&t),
        MarkDirty::sql(&t),
        AcceptChecksum::sql(&t),
        Restore::sql(&t),
        FenceCheck::sql(&t),
    ] {
        assert!(
            sql.starts_with(
                "WITH lease_ok AS (UPDATE \"_migrations_lease\" SET expires_at = clock_timestamp()"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("expires_at > clock_timestamp()) RETURNING fence)")
                || sql.contains("expires_at > clock_timestamp() RETURNING fence)"),
            "{sql}"
        );
    }
}

/// The parameters `sql` takes: its placeholders `$1` up to the highest, none skipped.
fn placeholders(sql: &str) -> usize {
    let used: Vec<usize> = (1..=20)
        .filter(|i| sql.contains(&format!("${i}::")))
        .collect();
    assert_eq!(used, (1..=used.len()).collect::<Vec<_>>(), "{sql}");
    used.len()
}

#[test]
fn parameter_counts_match_the_placeholders() {
    let t = tables();
    let path = std::path::Path::new("migrations/7_test.sql");
    let m = crate::source::parse(path, b"SELECT 1;\n").expect("test migration loads");
    let (m, v) = (&m, &7);
    let f = &Fence {
        holder: "h".into(),
        token: 3,
        ttl_ms: 1000,
    };
    // One row per statement: its SQL and the number of parameters its struct binds.
    #[rustfmt::skip]
        let cases: [(String, usize); 8] = [
            (Record::sql(&t), Record { migration: m, duration_ms: None, fence: f, statements_done: 0 }.params().len()),
            (Unrecord::sql(&t), Unrecord { version: v, fence: f }.params().len()),
            (MarkDirty::sql(&t), MarkDirty { migration: m, statements_done: 1, fence: f }.params().len()),
            (AcceptChecksum::sql(&t), AcceptChecksum { migration: m, fence: f }.params().len()),
            (Restore::sql(&t), Restore { version: v, statements_done: 1, fence: f }.params().len()),
            (FenceCheck::sql(&t), FenceCheck { fence: f }.params().len()),
            (Checked::up_sql(&t), Checked::Up { migration: m, fence: f }.params().len()),
            (Checked::down_sql(&t), Checked::Down { version: v }.params().len()),
        ];
    for (sql, params) in &cases {
        assert_eq!(placeholders(sql), *params, "{sql}");
    }
    // After the fence check, the ledger write leaves the lease row alone.
    assert!(!Checked::up_sql(&t).contains("lease"));
    assert!(!Checked::down_sql(&t).contains("lease"));
}

#[test]
fn the_fence_check_raises_instead_of_matching_no_row() {
    let sql = FenceCheck::sql(&tables());
    assert_eq!(
        sql,
        "WITH lease_ok AS (UPDATE \"_migrations_lease\" SET expires_at = clock_timestamp() + INTERVAL '1 millisecond' * $3::INT8
            WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8 AND expires_at > clock_timestamp() RETURNING fence)
         SELECT CASE WHEN count(*) = 1 THEN 1::INT8
            ELSE ('crdb-migrate fence check failed: the lease is not ours any more (holder ' || $1::TEXT || ', fence ' || $2::INT8::TEXT || ', ' || count(*)::TEXT || ' rows)')::INT8 END
         FROM lease_ok"
    );
    // Nothing here reads the lease row before writing it.
    assert!(!sql.contains("SELECT holder"));
}

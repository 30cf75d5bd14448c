//! The lease row in `_migrations_lease`: one row with holder, a fence token that grows
//! at every acquisition and an expiry in database time. Each function here is one statement;
//! the choreography (polling, heartbeat, release on every path) is `session`'s.

use time::OffsetDateTime;
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use crate::error::{Error, Result};
use crate::sqlstate;
use crate::store::Tables;
use crate::store::fence::{self, Fence};
use crate::store::owner;

/// The lease row as read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaseInfo {
    /// Who holds (or last held) it; `None` when free.
    pub holder: Option<String>,
    /// The fence token of the last acquisition.
    pub fence: i64,
    /// When it expires (database time), RFC 3339.
    pub expires_at: Option<String>,
    /// Held and not expired.
    pub held: bool,
}

fn rfc3339_micros(micros: Option<i64>) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros?) * 1000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Reads the lease row (none when the table does not exist yet).
pub async fn show(client: &Client, t: &Tables) -> Result<Option<LeaseInfo>> {
    let sql = format!(
        "SELECT holder, fence, (extract(epoch from expires_at) * 1000000)::INT8, (holder IS NOT NULL AND expires_at > clock_timestamp()) FROM {} WHERE id = 1",
        t.lease()
    );
    match client.query_opt(&sql, &[]).await {
        Ok(Some(row)) => Ok(Some(LeaseInfo {
            holder: row.try_get(0).ok().flatten(),
            fence: row.try_get(1).unwrap_or(0),
            expires_at: rfc3339_micros(row.try_get(2).ok().flatten()),
            held: row.try_get(3).unwrap_or(false),
        })),
        Ok(None) => Ok(None),
        Err(e) if sqlstate::is_undefined_table(&e) => Ok(None),
        Err(e) => Err(Error::db("reading the lease", e)),
    }
}

/// Frees the lease whoever holds it (`unlock --force`), returning what it was.
pub async fn force_release(client: &Client, t: &Tables) -> Result<Option<LeaseInfo>> {
    let before = show(client, t).await?;
    let sql = format!(
        "UPDATE {} SET holder = NULL, expires_at = NULL WHERE id = 1",
        t.lease()
    );
    client
        .execute(&sql, &[])
        .await
        .map_err(|e| Error::db("releasing the lease", e))?;
    Ok(before)
}

/// The acquisition: one conditional UPDATE taking the row when it is free, expired or already
/// held under our holder name, bumping the fence; `$1` holder, `$2` TTL ms, `$3` our process's
/// token and `$4` this statement's number (see `owner`), stored with the row.
///
/// Whatever the holder, the row is refused to a statement of ours that was sent before the one
/// that took it (same process token, smaller number): a stale acquisition left in the buffer
/// of a dropped connection's backend, which would otherwise take the lease from the attempt
/// that started over (or, once it released, hold a lease nobody uses for a TTL). A later
/// statement of ours still takes over a lease an earlier one took, and another process under
/// the same holder name (a restarted pod) still takes over at once. A row without a token (left
/// by an older version of this tool) is taken as before.
pub fn acquire_sql(t: &Tables) -> String {
    format!(
        "UPDATE {} SET holder = $1::TEXT, fence = fence + 1, acquired_at = clock_timestamp(),
            expires_at = clock_timestamp() + INTERVAL '1 millisecond' * $2::INT8,
            owner = $3::TEXT, owner_seq = $4::INT8
         WHERE id = 1 AND (holder IS NULL OR expires_at IS NULL OR expires_at <= clock_timestamp() OR holder = $1::TEXT)
            AND (owner IS DISTINCT FROM $3::TEXT OR owner_seq IS NULL OR owner_seq <= $4::INT8)
         RETURNING fence",
        t.lease()
    )
}

/// One attempt at taking the lease: our new fence token, or `None` when someone else holds it
/// (or, on CockroachDB, a concurrent acquirer made us restart: not acquired this time; or a
/// later acquisition of ours took it first). Each call is a new statement with a new number.
pub async fn try_acquire(
    client: &Client,
    t: &Tables,
    holder: &str,
    ttl_ms: i64,
) -> Result<Option<i64>> {
    let (process, seq) = (owner::process(), owner::next_seq());
    // Typed parameters: one round trip (no separate prepare), so it fits in a flight.
    let params: [(&(dyn ToSql + Sync), Type); 4] = [
        (&holder, Type::TEXT),
        (&ttl_ms, Type::INT8),
        (&process, Type::TEXT),
        (&seq, Type::INT8),
    ];
    match client.query_typed(&acquire_sql(t), &params).await {
        Ok(rows) => Ok(rows.first().and_then(|r| r.try_get(0).ok())),
        Err(e) if sqlstate::is_retry(&e) => Ok(None),
        Err(e) => Err(Error::db("acquiring the lease", e)),
    }
}

/// Extends our lease by the TTL; `Ok(1)` when renewed, `Ok(0)` when it is not ours any more.
pub async fn renew(
    client: &Client,
    t: &Tables,
    f: &Fence,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let sql = fence::renewal(t, "$1", "$2", "$3");
    let params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&f.holder, Type::TEXT),
        (&f.token, Type::INT8),
        (&f.ttl_ms, Type::INT8),
    ];
    Ok(client
        .query_typed(&format!("{sql} RETURNING 1"), &params)
        .await?
        .len() as u64)
}

/// Whether the lease is still ours: our holder and fence, unexpired in database time.
pub async fn is_ours(
    client: &Client,
    t: &Tables,
    f: &Fence,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "SELECT holder IS NOT DISTINCT FROM $1::TEXT AND fence = $2::INT8 AND expires_at > clock_timestamp() FROM {} WHERE id = 1",
        t.lease()
    );
    let row = client.query_opt(&sql, &[&f.holder, &f.token]).await?;
    Ok(row
        .and_then(|r| r.try_get::<_, Option<bool>>(0).ok().flatten())
        .unwrap_or(false))
}

/// Frees our lease (a no-op when it is not ours any more).
pub async fn release(
    client: &Client,
    t: &Tables,
    f: &Fence,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE {} SET holder = NULL, expires_at = NULL WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8",
        t.lease()
    );
    let params: [(&(dyn ToSql + Sync), Type); 2] =
        [(&f.holder, Type::TEXT), (&f.token, Type::INT8)];
    Ok(client
        .query_typed(&format!("{sql} RETURNING 1"), &params)
        .await?
        .len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expiry_is_shown_in_rfc3339_utc() {
        assert_eq!(
            rfc3339_micros(Some(1_700_000_000_123_456)).as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(rfc3339_micros(None), None);
    }

    #[test]
    fn acquisition_uses_the_database_clock() {
        let t = Tables::new(&crate::store::TableName::default());
        let sql = acquire_sql(&t);
        assert!(sql.contains("expires_at <= clock_timestamp()"), "{sql}");
        assert!(sql.contains("fence = fence + 1"), "{sql}");
    }

    #[test]
    fn acquisition_refuses_only_our_own_earlier_statements() {
        let sql = acquire_sql(&Tables::new(&crate::store::TableName::default()));
        assert!(
            sql.contains("owner = $3::TEXT, owner_seq = $4::INT8"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "AND (owner IS DISTINCT FROM $3::TEXT OR owner_seq IS NULL OR owner_seq <= $4::INT8)"
            ),
            "{sql}"
        );
    }
}

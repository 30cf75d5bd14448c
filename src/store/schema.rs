//! The schema snapshot stored after a run that did work: its version, hash and text form live
//! in three columns of the lease row. That row is already ours to write under the lease, so the
//! write is fenced by its own `WHERE` (holder, fence, unexpired) and costs no new table: nothing
//! more for setup to create, and the lease table is already left out of every snapshot.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::sqlstate;
use crate::store::Tables;
use crate::store::fence::{Fence, Param};

/// The columns, as `create_sql` declares them and adoption adds them.
pub const COLUMNS: [&str; 3] = [
    "schema_version INT8",
    "schema_hash TEXT",
    "schema_text TEXT",
];

/// The snapshot stored after the last run that did work.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The version the database was at.
    pub version: i64,
    /// The snapshot's hash.
    pub hash: String,
    /// The snapshot, read back from its text form.
    pub snapshot: Snapshot,
}

/// The statements adding the columns to a lease table made before them, one per query (see
/// `setup::adopt_sql` for why).
pub fn add_columns_sql(t: &Tables) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|c| format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {c}", t.lease()))
        .collect()
}

/// The fenced write: stores the snapshot and extends the lease while it is ours and unexpired.
pub fn store_sql(t: &Tables) -> String {
    format!(
        "UPDATE {lease} SET schema_version = $4::INT8, schema_hash = $5::TEXT, schema_text = $6::TEXT,
            expires_at = clock_timestamp() + INTERVAL '1 millisecond' * $3::INT8
         WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8 AND expires_at > clock_timestamp()
         RETURNING id",
        lease = t.lease()
    )
}

/// Stores `snapshot` as the schema at `version`, fenced; adds the columns first to a lease
/// table made before them. Returns whether the lease was still ours (the row was written).
pub async fn store(
    client: &Client,
    t: &Tables,
    fence: &Fence,
    version: i64,
    snapshot: &Snapshot,
) -> Result<bool> {
    let (sql, text, hash) = (store_sql(t), snapshot.text(), snapshot.hash());
    // Unnamed (`query_typed`): one round trip, and no statement left to close after it.
    let params: [(Param<'_>, Type); 6] = [
        (&fence.holder, Type::TEXT),
        (&fence.token, Type::INT8),
        (&fence.ttl_ms, Type::INT8),
        (&version, Type::INT8),
        (&hash, Type::TEXT),
        (&text, Type::TEXT),
    ];
    let write = || client.query_typed(&sql, &params);
    let written = match write().await {
        Err(e) if sqlstate::is_undefined_column(&e) => {
            for add in add_columns_sql(t) {
                client
                    .batch_execute(&add)
                    .await
                    .map_err(|e| Error::db("adding the schema columns to the lease table", e))?;
            }
            write().await
        }
        r => r,
    };
    Ok(written
        .map_err(|e| Error::db("storing the schema snapshot", e))?
        .len()
        == 1)
}

/// The stored snapshot; `None` when no run stored one (or the tables predate it).
pub async fn stored(client: &Client, t: &Tables) -> Result<Option<Stored>> {
    let sql = format!(
        "SELECT schema_version, schema_hash, schema_text FROM {} WHERE id = 1",
        t.lease()
    );
    match client
        .query_typed(&sql, &[])
        .await
        .map(|rows| rows.into_iter().next())
    {
        Ok(Some(row)) => {
            let version: Option<i64> = row.try_get(0).ok().flatten();
            let hash: Option<String> = row.try_get(1).ok().flatten();
            let text: Option<String> = row.try_get(2).ok().flatten();
            Ok(match (version, hash, text) {
                (Some(version), Some(hash), Some(text)) => Some(Stored {
                    version,
                    hash,
                    snapshot: Snapshot::from_text(&text),
                }),
                _ => None,
            })
        }
        Ok(None) => Ok(None),
        Err(e) if sqlstate::is_undefined_table(&e) || sqlstate::is_undefined_column(&e) => Ok(None),
        Err(e) => Err(Error::db("reading the stored schema snapshot", e)),
    }
}

//! The schema drift stores after a run that did work: its version, the whole snapshot's hash
//! and the per-object hashes ([`Objects`] text), in three columns of the lease row. That row
//! is already ours to write under the lease, so the write is fenced by its own `WHERE`
//! (holder, fence) and costs no new table: nothing more for setup to create, and the lease
//! table is already left out of every snapshot.
//!
//! On PostgreSQL both statements build the live objects on the server ([`objects_sql`]): the
//! store sends no definitions, and the read returns the two objects texts only when the hashes
//! differ, so a run whose schema is as stored pulls one short row.

use std::future::Future;

use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use crate::connect::Flavour;
use crate::error::{Error, Result};
use crate::snapshot::{Objects, objects_sql, ours};
use crate::sqlstate;
use crate::store::Tables;
use crate::store::fence::Fence;

/// The columns, as `create_sql` declares them and adoption adds them.
pub const COLUMNS: [&str; 3] = [
    "schema_version INT8",
    "schema_hash TEXT",
    "schema_objects TEXT",
];

/// The stored snapshot as the prepare flight reads it (cheap: no live snapshot yet).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The version the database was at when it was stored.
    pub version: i64,
    /// The stored snapshot's hash.
    pub hash: String,
    /// The stored objects (read here on CockroachDB only; on PostgreSQL [`compare`] returns
    /// them when the live hash differs).
    pub objects: Option<Objects>,
}

/// What [`compare`] found on PostgreSQL: `None` when the live hash equals the stored one,
/// else (stored objects, live objects).
pub type Compared = Option<(Objects, Objects)>;

/// The statements adding the columns to a lease table made before them, one per query.
pub fn add_columns_sql(t: &Tables) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|c| format!("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {c}", t.lease()))
        .collect()
}

/// The read of what is stored: a one-row primary key lookup, cheap enough for the prepare
/// flight (the live schema is built only once the plan says the database is still at the
/// stored version, see [`compare_sql`]).
pub fn read_sql(t: &Tables, flavour: Flavour) -> String {
    let objects = match flavour {
        Flavour::PostgreSQL => "NULL::TEXT",
        Flavour::CockroachDB => "schema_objects",
    };
    format!(
        "SELECT schema_version, schema_hash, {objects} FROM {} WHERE id = 1 AND schema_version IS NOT NULL",
        t.lease()
    )
}

/// On PostgreSQL, the live objects built by the server and compared with the stored hash `$2`
/// there; both objects texts come back only when they differ. `$1`: our tables.
pub fn compare_sql(t: &Tables) -> String {
    format!(
        "SELECT CASE WHEN lh IS DISTINCT FROM $2::TEXT THEN lt END, \
           CASE WHEN lh IS DISTINCT FROM $2::TEXT THEN (SELECT schema_objects FROM {lease} WHERE id = 1) END \
         FROM (SELECT lt, encode(sha256(convert_to(lt, 'UTF8')), 'hex') AS lh \
               FROM (SELECT {live} AS lt OFFSET 0) AS a) AS b",
        live = objects_sql("$1::TEXT[]", t),
        lease = t.lease()
    )
}

/// The fenced write of the snapshot at `$3`, while the lease (holder `$1`, fence `$2`) is
/// ours. On PostgreSQL the server builds it (`$4`: our tables); on CockroachDB the client
/// sends its hash `$4` and objects `$5`.
pub fn store_sql(t: &Tables, flavour: Flavour) -> String {
    let set = match flavour {
        Flavour::PostgreSQL => format!(
            "schema_objects = s.t, schema_hash = encode(sha256(convert_to(s.t, 'UTF8')), 'hex') \
             FROM (SELECT {} AS t OFFSET 0) AS s",
            objects_sql("$4::TEXT[]", t)
        ),
        Flavour::CockroachDB => "schema_hash = $4::TEXT, schema_objects = $5::TEXT".to_string(),
    };
    format!(
        "UPDATE {lease} SET schema_version = $3::INT8, {set} \
         WHERE id = 1 AND holder = $1::TEXT AND fence = $2::INT8 RETURNING 1",
        lease = t.lease()
    )
}

/// Stores the schema at `version`, fenced: on PostgreSQL built by the server, on CockroachDB
/// `objects` (read by the client). Unnamed (`query_typed`): one message group, nothing to close.
/// Returns whether the lease was still ours (the row was written).
pub async fn store(
    client: &Client,
    t: &Tables,
    flavour: Flavour,
    fence: &Fence,
    version: i64,
    objects: Option<&Objects>,
) -> Result<bool> {
    let sql = store_sql(t, flavour);
    let ours = ours(t);
    let (text, hash) = match objects {
        Some(o) => (o.text(), crate::snapshot::text_hash(&o.text())),
        None => (String::new(), String::new()),
    };
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&fence.holder, Type::TEXT),
        (&fence.token, Type::INT8),
        (&version, Type::INT8),
    ];
    match flavour {
        Flavour::PostgreSQL => params.push((&ours, Type::TEXT_ARRAY)),
        Flavour::CockroachDB => params.extend([
            (&hash as &(dyn ToSql + Sync), Type::TEXT),
            (&text, Type::TEXT),
        ]),
    }
    let rows = match flavour {
        Flavour::PostgreSQL => without_jit(client, client.query_typed(&sql, &params)).await,
        Flavour::CockroachDB => client.query_typed(&sql, &params).await,
    }
    .map_err(|e| Error::db("storing the schema snapshot", e))?;
    Ok(rows.len() == 1)
}

/// Reads what is stored; `None` when nothing is. With `adopt` (under the lease), a lease table
/// made before the columns gets them here, at the first run with work (once per database).
pub async fn read(
    client: &Client,
    t: &Tables,
    flavour: Flavour,
    adopt: bool,
) -> Result<Option<Stored>> {
    let row = match client.query_typed(&read_sql(t, flavour), &[]).await {
        Ok(rows) => rows.into_iter().next(),
        Err(e) if sqlstate::is_undefined_column(&e) && adopt => {
            for add in add_columns_sql(t) {
                client
                    .batch_execute(&add)
                    .await
                    .map_err(|e| Error::db("adding the schema columns to the lease table", e))?;
            }
            None
        }
        Err(e) if sqlstate::is_undefined_table(&e) || sqlstate::is_undefined_column(&e) => None,
        Err(e) => return Err(Error::db("reading the stored schema snapshot", e)),
    };
    let Some(row) = row else { return Ok(None) };
    let get = |i: usize| row.try_get::<_, Option<String>>(i).ok().flatten();
    let version: Option<i64> = row.try_get(0).ok().flatten();
    Ok(version.map(|version| Stored {
        version,
        hash: get(1).unwrap_or_default(),
        objects: get(2).map(|o| Objects::parse(&o)),
    }))
}

/// On PostgreSQL: builds the live objects on the server and compares them with `hash` there
/// (see [`compare_sql`]).
pub async fn compare(client: &Client, t: &Tables, hash: &str) -> Result<Compared> {
    let ours = ours(t);
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&ours, Type::TEXT_ARRAY), (&hash, Type::TEXT)];
    let rows = without_jit(client, client.query_typed(&compare_sql(t), &params))
        .await
        .map_err(|e| Error::db("comparing the schema with the stored snapshot", e))?;
    let row = rows.first();
    let get = |i: usize| row.and_then(|r| r.try_get::<_, Option<String>>(i).ok().flatten());
    Ok(get(0).map(|live| {
        let stored = get(1).unwrap_or_default();
        (Objects::parse(&stored), Objects::parse(&live))
    }))
}

/// Runs `statement` with PostgreSQL's JIT compilation off: `SET jit = off` before it and
/// `RESET jit` after, in the same flight (no round trip of their own). The planner compiles a
/// statement whose estimated cost passes `jit_above_cost`, and the estimate of the objects
/// statement grows with the catalog: on a database of 500 tenant schemas of 20 tables,
/// compiling it took 620 ms against 55 ms to run it. Neither setting can fail on PostgreSQL 15
/// (`jit` exists whether or not the server was built with LLVM), and a failure of either would
/// only leave the cost as it was, so their results are not looked at.
async fn without_jit<T>(client: &Client, statement: impl Future<Output = T>) -> T {
    let (_, out, _) = tokio::join!(
        client.batch_execute("SET jit = off"),
        statement,
        client.batch_execute("RESET jit")
    );
    out
}

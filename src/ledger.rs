//! The `_migrations` table (SPEC §3): created on first use, a seed-made three-column table
//! adopted, rows read, and the SQL that records, removes and marks rows. The table name is
//! validated by `config` and only ever spliced in through [`Tables`].

use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::error::{Error, Result};
use crate::lease::Fence;
use crate::source::Migration;

/// The names of the ledger table and its lease table, validated identifiers.
#[derive(Debug, Clone)]
pub struct Tables {
    /// The ledger's bare name, e.g. `_migrations` (for catalog lookups).
    pub name: String,
    /// The ledger, quoted for SQL, e.g. `"_migrations"`.
    pub ledger: String,
    /// The lease, e.g. `_migrations_lease`.
    pub lease: String,
}

impl Tables {
    /// Names for a ledger table already validated as an unquoted lowercase identifier.
    pub fn new(ledger: &str) -> Tables {
        Tables {
            name: ledger.to_string(),
            ledger: format!("\"{ledger}\""),
            lease: format!("\"{ledger}_lease\""),
        }
    }
}

/// One row of `_migrations`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRow {
    /// The version.
    pub version: i64,
    /// The description recorded when it was applied.
    pub description: String,
    /// When it was applied (database time).
    pub applied_at: Option<OffsetDateTime>,
    /// The file's checksum then; `None` for rows adopted from an older tool.
    pub checksum: Option<String>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// Who applied it.
    pub applied_by: Option<String>,
    /// The lease fence token it was applied under.
    pub fence: Option<i64>,
    /// Marked dirty: possibly partly applied.
    pub dirty: bool,
    /// For `@NO_TRANSACTION` migrations: statements finished so far.
    pub statements_done: i64,
}

/// What reading the ledger found.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The table exists.
    pub exists: bool,
    /// The table exists but lacks our columns (made by an older tool): it will be adopted.
    pub needs_adoption: bool,
    /// Its rows, by ascending version.
    pub rows: Vec<AppliedRow>,
}

impl Ledger {
    /// The newest applied (not dirty) version, 0 when none.
    pub fn current(&self) -> i64 {
        self.rows
            .iter()
            .filter(|r| !r.dirty)
            .map(|r| r.version)
            .max()
            .unwrap_or(0)
    }
}

const FULL_COLUMNS: &str = "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8, checksum, duration_ms, applied_by, fence, status, statements_done";
const SEED_COLUMNS: &str =
    "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8";

/// Reads the ledger in one round trip without changing anything. A missing table reads as
/// empty; a seed-made table reads with its three columns.
pub async fn read(client: &Client, t: &Tables) -> Result<Ledger> {
    let full = format!("SELECT {FULL_COLUMNS} FROM {} ORDER BY 1", t.ledger);
    match client.simple_query(&full).await {
        Ok(msgs) => Ok(Ledger {
            exists: true,
            needs_adoption: false,
            rows: parse_rows(&msgs)?,
        }),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(Ledger::default()),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_COLUMN) => {
            let seed = format!("SELECT {SEED_COLUMNS} FROM {} ORDER BY 1", t.ledger);
            let msgs = client
                .simple_query(&seed)
                .await
                .map_err(|e| Error::db(format!("reading {}", t.ledger), &e))?;
            Ok(Ledger {
                exists: true,
                needs_adoption: true,
                rows: parse_rows(&msgs)?,
            })
        }
        Err(e) => Err(Error::db(format!("reading {}", t.ledger), &e)),
    }
}

fn parse_rows(msgs: &[SimpleQueryMessage]) -> Result<Vec<AppliedRow>> {
    let bad = |what: &str| Error::Database {
        context: "reading the ledger".into(),
        sqlstate: None,
        message: format!("unexpected {what}"),
        connection_lost: false,
    };
    let mut rows = Vec::new();
    for m in msgs {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        let version = r
            .get(0)
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| bad("version"))?;
        let text = |i: usize| r.try_get(i).ok().flatten().map(str::to_string);
        let int = |i: usize| text(i).and_then(|v| v.parse::<i64>().ok());
        let applied_at = int(2).and_then(|micros| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
        });
        let full = r.len() > 3;
        rows.push(AppliedRow {
            version,
            description: text(1).unwrap_or_default(),
            applied_at,
            checksum: if full { text(3) } else { None },
            duration_ms: if full { int(4) } else { None },
            applied_by: if full { text(5) } else { None },
            fence: if full { int(6) } else { None },
            dirty: full && text(7).as_deref() == Some("dirty"),
            statements_done: if full { int(8).unwrap_or(0) } else { 0 },
        });
    }
    Ok(rows)
}

/// Creates the ledger and lease tables if missing and adopts a seed-made ledger, in one round
/// trip. Idempotent; safe to run concurrently (every statement is `IF NOT EXISTS`).
pub async fn ensure(client: &Client, t: &Tables) -> Result<()> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {l} (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            checksum TEXT,
            duration_ms BIGINT,
            applied_by TEXT,
            fence BIGINT,
            status TEXT NOT NULL DEFAULT 'applied',
            statements_done BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS {lease} (
            id INT8 PRIMARY KEY,
            holder TEXT,
            fence INT8 NOT NULL DEFAULT 0,
            expires_at TIMESTAMPTZ,
            acquired_at TIMESTAMPTZ
        );
        INSERT INTO {lease} (id, fence) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        l = t.ledger,
        lease = t.lease
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::db(format!("creating {}", t.ledger), &e))
}

/// Adds our columns to a ledger made by an older tool; its rows stay, with NULL checksums.
pub async fn adopt(client: &Client, t: &Tables) -> Result<()> {
    let sql = format!(
        "ALTER TABLE {l} ADD COLUMN IF NOT EXISTS checksum TEXT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS duration_ms BIGINT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS applied_by TEXT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS fence BIGINT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS status TEXT NOT NULL DEFAULT 'applied';
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS statements_done BIGINT NOT NULL DEFAULT 0;",
        l = t.ledger
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::db(format!("adopting {}", t.ledger), &e))?;
    // The seed's `version INTEGER` is int4 on PostgreSQL: timestamp versions would not fit.
    let version_type = client
        .query_opt(
            "SELECT data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'version'",
            &[&t.name],
        )
        .await
        .map_err(|e| Error::db(format!("adopting {}", t.ledger), &e))?
        .map(|row| row.get::<_, String>(0));
    let widened = matches!(version_type.as_deref(), Some("integer" | "smallint"));
    if widened {
        client
            .batch_execute(&format!(
                "ALTER TABLE {} ALTER COLUMN version TYPE BIGINT",
                t.ledger
            ))
            .await
            .map_err(|e| Error::db(format!("widening {}.version to BIGINT", t.ledger), &e))?;
    }
    tracing::info!(
        event = "ledger.adopted",
        table = %t.ledger,
        widened_version = widened,
        "adopted a ledger made by an older tool: added columns, kept its rows"
    );
    Ok(())
}

/// Reads the ledger under the lease, adopting a seed-made table first when needed.
pub async fn read_adopted(client: &Client, t: &Tables) -> Result<Ledger> {
    let ledger = read(client, t).await?;
    if !ledger.needs_adoption {
        return Ok(ledger);
    }
    adopt(client, t).await?;
    read(client, t).await
}

/// The fence check, as a data-modifying CTE named `lease_ok`: it extends our lease and yields
/// one row only while the lease is ours (parameters `holder`, `fence`) and unexpired in
/// database time. Writing the lease row inside the migration's transaction means a takeover
/// and our commit cannot both succeed. `ttl` is the TTL in milliseconds.
fn lease_ok(t: &Tables, holder: &str, fence: &str, ttl: &str) -> String {
    format!(
        "lease_ok AS (UPDATE {lease} SET expires_at = clock_timestamp() + INTERVAL '1 millisecond' * {ttl}::INT8
            WHERE id = 1 AND holder = {holder}::TEXT AND fence = {fence}::INT8 AND expires_at > clock_timestamp()
            RETURNING fence)",
        lease = t.lease
    )
}

/// Records a migration as applied (or updates a dirty row to applied), fenced. Parameters:
/// `$1` version, `$2` description, `$3` checksum, `$4` duration_ms, `$5` holder, `$6` fence,
/// `$7` TTL ms, `$8` status, `$9` statements_done. Affects one row, or none when the lease
/// is not ours.
pub fn record_sql(t: &Tables) -> String {
    format!(
        "WITH {lease_ok}
         INSERT INTO {l} (version, description, applied_at, checksum, duration_ms, applied_by, fence, status, statements_done)
         SELECT $1::INT8, $2::TEXT, now(), $3::TEXT, $4::INT8, $5::TEXT, $6::INT8, $8::TEXT, $9::INT8 FROM lease_ok
         ON CONFLICT (version) DO UPDATE SET description = excluded.description, applied_at = excluded.applied_at,
            checksum = excluded.checksum, duration_ms = excluded.duration_ms, applied_by = excluded.applied_by,
            fence = excluded.fence, status = excluded.status, statements_done = excluded.statements_done",
        lease_ok = lease_ok(t, "$5", "$6", "$7"),
        l = t.ledger
    )
}

/// The parameters of [`record_sql`], in order, for one migration.
pub struct RecordArgs<'a> {
    /// The migration.
    pub migration: &'a Migration,
    /// How long it took, if known.
    pub duration_ms: Option<i64>,
    /// Our lease identity.
    pub fence: &'a Fence,
    /// `applied` or `dirty`.
    pub status: &'static str,
    /// Statements done (no-transaction migrations).
    pub statements_done: i64,
}

impl RecordArgs<'_> {
    /// The bound parameters `$1`..`$9` of [`record_sql`].
    pub fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        let m = self.migration;
        [
            &m.version,
            &m.description,
            &m.checksum,
            &self.duration_ms,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
            &self.status,
            &self.statements_done,
        ]
    }
}

/// Removes a migration's row, fenced: `$1` version, `$2` holder, `$3` fence, `$4` TTL ms.
/// Affects one row, or none when the lease is not ours (or the row is gone).
pub fn unrecord_sql(t: &Tables) -> String {
    format!(
        "WITH {lease_ok}
         DELETE FROM {l} WHERE version = $1::INT8 AND EXISTS (SELECT 1 FROM lease_ok)",
        lease_ok = lease_ok(t, "$2", "$3", "$4"),
        l = t.ledger
    )
}

/// Marks a migration dirty, fenced, in its own transaction after a failure that may have
/// left part of it applied: `$1` version, `$2` description, `$3` checksum, `$4`
/// statements_done, `$5` holder, `$6` fence, `$7` TTL ms.
pub fn mark_dirty_sql(t: &Tables) -> String {
    format!(
        "WITH {lease_ok}
         INSERT INTO {l} (version, description, applied_at, checksum, applied_by, fence, status, statements_done)
         SELECT $1::INT8, $2::TEXT, now(), $3::TEXT, $5::TEXT, $6::INT8, 'dirty', $4::INT8 FROM lease_ok
         ON CONFLICT (version) DO UPDATE SET status = 'dirty', statements_done = excluded.statements_done,
            checksum = excluded.checksum, applied_by = excluded.applied_by, fence = excluded.fence",
        lease_ok = lease_ok(t, "$5", "$6", "$7"),
        l = t.ledger
    )
}

/// Replaces a row's checksum with the file's (`repair --accept-checksum`), fenced: `$1`
/// version, `$2` checksum, `$3` holder, `$4` fence, `$5` TTL ms.
pub fn accept_checksum_sql(t: &Tables) -> String {
    format!(
        "WITH {lease_ok}
         UPDATE {l} SET checksum = $2::TEXT WHERE version = $1::INT8 AND EXISTS (SELECT 1 FROM lease_ok)",
        lease_ok = lease_ok(t, "$3", "$4", "$5"),
        l = t.ledger
    )
}

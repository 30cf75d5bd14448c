//! The `_migrations` ledger (docs/commands.md, "Tables"): its rows and reading them in one round
//! trip. A missing table reads as empty; a three-column table made by an older hand-written client
//! (`version INTEGER, description, applied_at`) reads with its three columns and is flagged for
//! adoption (see `setup`).

use time::OffsetDateTime;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::error::{Error, Result};
use crate::sqlstate;
use crate::store::Tables;

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
    /// The table exists but lacks our columns (made by an older tool): it will be adopted.
    pub needs_adoption: bool,
    /// Its rows, by ascending version.
    pub rows: Vec<AppliedRow>,
}

impl Ledger {
    /// The newest applied (not dirty) version, 0 when none.
    pub fn current(&self) -> i64 {
        current(&self.rows)
    }
}

/// The newest applied (not dirty) version of `rows`, 0 when none.
pub fn current(rows: &[AppliedRow]) -> i64 {
    rows.iter()
        .filter(|r| !r.dirty)
        .map(|r| r.version)
        .max()
        .unwrap_or(0)
}

const FULL_COLUMNS: &str = "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8, checksum, duration_ms, applied_by, fence, status, statements_done";
const OLDER_LEDGER_COLUMNS: &str =
    "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8";

/// The statement reading every row with our columns.
pub fn read_sql(t: &Tables) -> String {
    format!("SELECT {FULL_COLUMNS} FROM {} ORDER BY 1", t.ledger())
}

/// Reads the ledger in one round trip without changing anything.
pub async fn read(client: &Client, t: &Tables) -> Result<Ledger> {
    match client.simple_query(&read_sql(t)).await {
        Ok(msgs) => Ok(Ledger {
            needs_adoption: false,
            rows: parse_rows(&msgs)?,
        }),
        Err(e) if sqlstate::is_undefined_table(&e) => Ok(Ledger::default()),
        Err(e) if sqlstate::is_undefined_column(&e) => {
            let older = format!(
                "SELECT {OLDER_LEDGER_COLUMNS} FROM {} ORDER BY 1",
                t.ledger()
            );
            let msgs = client
                .simple_query(&older)
                .await
                .map_err(|e| Error::db(format!("reading {}", t.ledger()), e))?;
            Ok(Ledger {
                needs_adoption: true,
                rows: parse_rows(&msgs)?,
            })
        }
        Err(e) => Err(Error::db(format!("reading {}", t.ledger()), e)),
    }
}

/// Reads the ledger under the lease, adopting a three-column table first when needed.
pub async fn read_adopted(client: &Client, t: &Tables) -> Result<Ledger> {
    let ledger = read(client, t).await?;
    if !ledger.needs_adoption {
        return Ok(ledger);
    }
    crate::store::setup::adopt(client, t).await?;
    read(client, t).await
}

/// The rows of a [`read_sql`] (or three-column) reply.
pub(crate) fn parse_rows(msgs: &[SimpleQueryMessage]) -> Result<Vec<AppliedRow>> {
    let bad = |what: &str| Error::Database {
        context: "reading the ledger".into(),
        sqlstate: None,
        message: format!("unexpected {what}"),
        source: None,
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

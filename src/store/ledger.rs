//! The `_migrations` ledger (docs/commands.md, "Tables"): its rows and reading them in one round
//! trip. A missing table reads as empty; a three-column table made by an older hand-written client
//! (`version INTEGER, description, applied_at`), or one made by an older crdb-migrate before it
//! stored each migration's undo, reads with the columns it has and is flagged for adoption (see
//! `setup`).

use futures_util::TryStreamExt;
use time::OffsetDateTime;
use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryRow};

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
    /// The migration's undo as the ledger keeps it.
    pub undo: StoredUndo,
}

/// A migration's undo as its ledger row keeps it (columns `undo_sql`, `undo_no_transaction`,
/// `undo_checksum`), so that an image without the file can still undo it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoredUndo {
    /// None kept: the row was written before undo was stored (`undo_no_transaction` NULL).
    #[default]
    NotStored,
    /// The migration has no `-- @UNDO` section (`undo_sql` NULL, `undo_no_transaction` set).
    Irreversible,
    /// Kept, but this read left its text on the server (only rollback planning reads it:
    /// [`crate::store::Tables::with_undo`]).
    Unread,
    /// The undo SQL, how it runs, and its checksum as recorded (empty when NULL).
    Sql {
        /// The undo section, as in the file.
        sql: String,
        /// It runs statement by statement, each autocommitted.
        no_transaction: bool,
        /// The recorded `undo_checksum`.
        checksum: String,
    },
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

/// The undo columns as a rollback reads them, and as every other read does: whether a text is
/// kept, not the text (named `undo_kept`, which is how [`parse_row`] tells them apart).
const UNDO_COLUMNS: &str = "undo_sql, undo_no_transaction::INT, undo_checksum";
const UNDO_KEPT_COLUMNS: &str =
    "(undo_sql IS NOT NULL)::INT AS undo_kept, undo_no_transaction::INT";
/// The columns of a ledger made by crdb-migrate before it stored undo.
const PRE_UNDO_COLUMNS: &str = "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8, checksum, duration_ms, applied_by, fence, status, statements_done";
const OLDER_LEDGER_COLUMNS: &str =
    "version::INT8, description, (extract(epoch from applied_at) * 1000000)::INT8";

/// The statement reading every row with our columns (the undo text only when `t` says so).
pub fn read_sql(t: &Tables) -> String {
    let undo = if t.reads_undo() {
        UNDO_COLUMNS
    } else {
        UNDO_KEPT_COLUMNS
    };
    format!(
        "SELECT {PRE_UNDO_COLUMNS}, {undo} FROM {} ORDER BY 1",
        t.ledger()
    )
}

/// Reads the ledger in one round trip without changing anything.
pub async fn read(client: &Client, t: &Tables) -> Result<Ledger> {
    match query_rows(client, &read_sql(t)).await {
        Ok(rows) => Ok(Ledger {
            needs_adoption: false,
            rows: rows?,
        }),
        Err(e) if sqlstate::is_undefined_table(&e) => Ok(Ledger::default()),
        Err(e) if sqlstate::is_undefined_column(&e) => read_older(client, t).await,
        Err(e) => Err(Error::db(format!("reading {}", t.ledger()), e)),
    }
}

/// Reads a ledger lacking some of our columns with the ones it has: an older crdb-migrate's
/// (no stored undo), else an older tool's three. One more round trip, until it is adopted.
async fn read_older(client: &Client, t: &Tables) -> Result<Ledger> {
    let mut last = None;
    for columns in [PRE_UNDO_COLUMNS, OLDER_LEDGER_COLUMNS] {
        let sql = format!("SELECT {columns} FROM {} ORDER BY 1", t.ledger());
        match query_rows(client, &sql).await {
            Ok(rows) => {
                return Ok(Ledger {
                    needs_adoption: true,
                    rows: rows?,
                });
            }
            Err(e) if sqlstate::is_undefined_column(&e) => last = Some(e),
            Err(e) => return Err(Error::db(format!("reading {}", t.ledger()), e)),
        }
    }
    Err(match last {
        Some(e) => Error::db(format!("reading {}", t.ledger()), e),
        None => Error::Database {
            context: format!("reading {}", t.ledger()),
            sqlstate: None,
            message: "no columns to read".into(),
            source: None,
        },
    })
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

/// The rows of a [`read_sql`] (or three-column) query, each parsed as it arrives: the reply's
/// rows are never all held as messages (each about 400 bytes more than its [`AppliedRow`]).
/// `Err`: the query failed; `Ok(Err)`: a row did not parse (the reply is still read to its
/// end, so a failure after that row wins, as when the rows were parsed after the reply).
pub(crate) async fn query_rows(
    client: &Client,
    sql: &str,
) -> std::result::Result<Result<Vec<AppliedRow>>, tokio_postgres::Error> {
    let stream = client.simple_query_raw(sql).await?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = Ok(Vec::new());
    while let Some(m) = stream.try_next().await? {
        if let (SimpleQueryMessage::Row(r), Ok(parsed)) = (m, rows.as_mut()) {
            match parse_row(&r) {
                Ok(row) => parsed.push(row),
                Err(e) => rows = Err(e),
            }
        }
    }
    Ok(rows)
}

/// One row of a [`read_sql`] (or three-column) reply.
fn parse_row(r: &SimpleQueryRow) -> Result<AppliedRow> {
    let bad = |what: &str| Error::Database {
        context: "reading the ledger".into(),
        sqlstate: None,
        message: format!("unexpected {what}"),
        source: None,
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
    Ok(AppliedRow {
        version,
        description: text(1).unwrap_or_default(),
        applied_at,
        checksum: if full { text(3) } else { None },
        duration_ms: if full { int(4) } else { None },
        applied_by: if full { text(5) } else { None },
        fence: if full { int(6) } else { None },
        dirty: full && text(7).as_deref() == Some("dirty"),
        statements_done: if full { int(8).unwrap_or(0) } else { 0 },
        undo: if r.columns().get(9).is_some_and(|c| c.name() == "undo_kept") {
            match (int(10), int(9)) {
                (None, _) => StoredUndo::NotStored,
                (Some(_), Some(0)) => StoredUndo::Irreversible,
                (Some(_), _) => StoredUndo::Unread,
            }
        } else if r.len() > 9 {
            stored_undo(text(9), int(10), text(11))
        } else {
            StoredUndo::NotStored
        },
    })
}

/// The stored undo of a row from its three columns: `undo_no_transaction` NULL means none was
/// stored; with it set, a NULL `undo_sql` means the migration is irreversible.
fn stored_undo(
    sql: Option<String>,
    no_transaction: Option<i64>,
    checksum: Option<String>,
) -> StoredUndo {
    match (no_transaction, sql) {
        (None, _) => StoredUndo::NotStored,
        (Some(_), None) => StoredUndo::Irreversible,
        (Some(nt), Some(sql)) => StoredUndo::Sql {
            sql,
            no_transaction: nt != 0,
            checksum: checksum.unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_mode_is_no_stored_undo_and_a_null_text_is_irreversible() {
        assert_eq!(stored_undo(None, None, None), StoredUndo::NotStored);
        assert_eq!(
            stored_undo(Some("DROP TABLE t".into()), None, Some("x".into())),
            StoredUndo::NotStored
        );
        assert_eq!(stored_undo(None, Some(0), None), StoredUndo::Irreversible);
        assert_eq!(
            stored_undo(Some(String::new()), Some(1), Some("c".into())),
            StoredUndo::Sql {
                sql: String::new(),
                no_transaction: true,
                checksum: "c".into()
            }
        );
    }
}

//! `baseline --version V | --from TOOL`: record files as applied without running them, so a
//! project another tool (or a hand) brought this far joins crdb-migrate without re-running
//! anything. Under the lease, in one transaction ended by the fence check, logged with who and
//! when. The other tool's table is only read, so switching back stays possible.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::import::Tool;
use crate::import::history;
use crate::log::events;
use crate::pipeline;
use crate::refusal::{Disagreement, Refusal};
use crate::session::Lease;
use crate::source::Migration;
use crate::store::fence::{FenceCheck, FencedWrite};
use crate::store::{Tables, ledger};

/// What to record as applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Every file up to and including this version.
    Version(i64),
    /// Exactly what this tool's history table in the database says is applied.
    From(Tool),
}

/// The versions of `set` a baseline records (pure, for `--version`).
pub fn up_to(set: &[Migration], version: i64) -> Result<Vec<i64>> {
    if !set.iter().any(|m| m.version == version) {
        let dir = set
            .first()
            .and_then(|m| m.path.parent())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the migrations directory".into());
        return Err(Error::Refused(Refusal::TargetNotAFile {
            target: version,
            dir,
        }));
    }
    Ok(set
        .iter()
        .filter(|m| m.version <= version)
        .map(|m| m.version)
        .collect())
}

/// The versions another tool's history says are applied, mapped onto `dir`'s files.
async fn from_tool(client: &Client, dir: &Path, tool: Tool) -> Result<Vec<i64>> {
    let table = history::table_of(tool);
    let Some(h) = history::read_history(client, tool)
        .await
        .map_err(|e| Error::db(format!("reading {table}"), e))?
    else {
        // Name the history that is here (golang-migrate and dbmate share a table name).
        let other = history::any_foreign_history(client)
            .await
            .map_err(|e| Error::db("looking for another tool's history table", e))?
            .map(|(t, table, _)| (t.to_string(), table));
        return Err(Error::Refused(Refusal::NoForeignHistory {
            tool: tool.to_string(),
            table: table.into(),
            other,
        }));
    };
    if !h.bad.is_empty() {
        return Err(Error::Disagreement(vec![Disagreement::ForeignHistoryBad {
            tool: tool.to_string(),
            table: h.table,
            rows: h.bad,
        }]));
    }
    history::map_versions(dir, &h, tool).map_err(|missing| {
        Error::Disagreement(vec![Disagreement::ForeignVersionsUnknown { missing }])
    })
}

/// The row a baseline writes for one file, unfenced: the fence check ends the transaction. It
/// keeps the file's undo like any recorded migration, so an older image can undo it too.
fn insert_sql(t: &Tables) -> String {
    format!(
        "INSERT INTO {} (version, description, applied_at, checksum, duration_ms, applied_by, fence, status, statements_done, undo_sql, undo_no_transaction, undo_checksum)
         VALUES ($1::INT8, $2::TEXT, now(), $3::TEXT, 0, $4::TEXT, $5::INT8, 'applied', $6::INT8, $7::TEXT, $8::BOOL, $9::TEXT)",
        t.ledger()
    )
}

/// One reply of the baseline's flight: rows affected, or the statement's error.
type Reply<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<u64, tokio_postgres::Error>> + 'a>>;

/// Records the baseline under `lease`; returns the versions recorded.
pub async fn baseline(
    client: &Client,
    tables: &Tables,
    dir: &Path,
    set: &[Migration],
    how: Baseline,
    lease: &Lease,
) -> Result<Vec<i64>> {
    refuse_unless_ledger_empty(client, tables).await?;
    let versions = match how {
        Baseline::Version(v) => up_to(set, v)?,
        Baseline::From(tool) => from_tool(client, dir, tool).await?,
    };
    let chosen: Vec<&Migration> = set
        .iter()
        .filter(|m| versions.binary_search(&m.version).is_ok())
        .collect();
    record(client, tables, &chosen, lease).await?;
    let f = &lease.fence;
    tracing::warn!(
        event = events::BASELINE,
        holder = %f.holder,
        fence = f.token,
        from = match how {
            Baseline::Version(_) => "version".to_string(),
            Baseline::From(t) => t.to_string(),
        },
        recorded = chosen.len(),
        through = versions.last().copied().unwrap_or(0),
        "baseline recorded: these files count as applied without having run"
    );
    Ok(chosen.iter().map(|m| m.version).collect())
}

/// A baseline only starts a ledger: refused when it has rows.
async fn refuse_unless_ledger_empty(client: &Client, tables: &Tables) -> Result<()> {
    let existing = ledger::read_adopted(client, tables).await?;
    if !existing.rows.is_empty() {
        return Err(Error::Disagreement(vec![Disagreement::LedgerNotEmpty {
            rows: existing.rows.len(),
        }]));
    }
    Ok(())
}

/// Writes one row per `chosen` file in one transaction, sent as one flight and ended by the
/// fence check. Both statements are prepared first, in one round trip of their own: a statement
/// sent as text would be prepared in the middle of the flight, and the `COMMIT` queued behind
/// it would reach the server before the fence check did, so the rows would commit whether or
/// not the lease was still ours. The transaction asks for SERIALIZABLE itself: a role or
/// database defaulting to READ COMMITTED must not weaken the fenced write (CockroachDB
/// `pkg/sql/conn_executor_ddl.go`, `maybeAdjustTxnForDDL`, only upgrades a transaction whose
/// first statement is DDL).
async fn record(
    client: &Client,
    tables: &Tables,
    chosen: &[&Migration],
    lease: &Lease,
) -> Result<()> {
    let f = &lease.fence;
    let applied_by = format!("baseline:{}", f.holder);
    let (insert, check_statement) = prepare(client, tables).await?;
    let check = FenceCheck { fence: f };
    let check_params = check.params();
    let done = statements_done(chosen);
    let mut flight: Vec<Reply<'_>> = vec![Box::pin(async {
        client.batch_execute(BEGIN).await.map(|()| 0)
    })];
    for (m, statements_done) in chosen.iter().zip(&done) {
        let insert = &insert;
        let applied_by = &applied_by;
        flight.push(Box::pin(async move {
            client
                .execute(
                    insert,
                    &[
                        &m.version,
                        &m.description,
                        &m.checksum,
                        applied_by,
                        &f.token,
                        statements_done,
                        &m.down,
                        &m.no_transaction,
                        &m.undo_checksum,
                    ],
                )
                .await
        }));
    }
    let check_statement = &check_statement;
    flight.push(Box::pin(async {
        client.execute(check_statement, &check_params).await
    }));
    flight.push(Box::pin(async {
        client.batch_execute("COMMIT").await.map(|()| 0)
    }));
    // The fence check is the reply before COMMIT's: its failure (and nothing else's) means
    // the lease is not ours, decided by position in the flight, never by message text.
    let fence_check = flight.len() - 2;
    let replies = pipeline::in_order(flight).await;
    settle(client, lease, replies, fence_check).await
}

/// How a baseline's transaction begins.
const BEGIN: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// The insert and the fence check, prepared in one pipelined round trip.
async fn prepare(
    client: &Client,
    tables: &Tables,
) -> Result<(tokio_postgres::Statement, tokio_postgres::Statement)> {
    let sqls = [insert_sql(tables), FenceCheck::sql(tables)];
    let mut prepared = pipeline::in_order(sqls.iter().map(|s| client.prepare(s)).collect())
        .await
        .into_iter();
    let mut next = || match prepared.next() {
        Some(Ok(p)) => Ok(p),
        Some(Err(e)) => Err(Error::db("preparing the baseline", e)),
        None => Err(Error::Database {
            context: "preparing the baseline".into(),
            sqlstate: None,
            message: "a statement was not prepared".into(),
            source: None,
        }),
    };
    Ok((next()?, next()?))
}

/// Each file's `statements_done`: all of its statements for a file run without a
/// transaction, else 0.
fn statements_done(chosen: &[&Migration]) -> Vec<i64> {
    chosen
        .iter()
        .map(|m| {
            if m.no_transaction {
                m.up_statements.len() as i64
            } else {
                0
            }
        })
        .collect()
}

/// Rolls back after the first failed reply, if any: the fence check's failure is a lost lease,
/// any other a database error.
async fn settle(
    client: &Client,
    lease: &Lease,
    replies: Vec<std::result::Result<u64, tokio_postgres::Error>>,
    fence_check: usize,
) -> Result<()> {
    let failed = replies
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| (i, e)));
    if let Some((i, e)) = failed {
        let _ = client.batch_execute("ROLLBACK").await;
        if i == fence_check && !crate::sqlstate::is_connection_lost(&e) {
            return Err(lease.lost_error("the fence check ending the baseline failed".into()));
        }
        return Err(Error::db("recording the baseline", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::mig;

    #[test]
    fn up_to_a_file_version_only() {
        let set = vec![mig(1), mig(2), mig(5)];
        assert_eq!(up_to(&set, 2).ok(), Some(vec![1, 2]));
        assert_eq!(up_to(&set, 5).ok(), Some(vec![1, 2, 5]));
        assert!(matches!(
            up_to(&set, 3),
            Err(Error::Refused(Refusal::TargetNotAFile { target: 3, .. }))
        ));
    }

    #[test]
    fn the_insert_is_unfenced_and_records_the_baseline() {
        let t = Tables::new(&crate::store::TableName::default());
        let sql = insert_sql(&t);
        assert!(sql.starts_with("INSERT INTO \"_migrations\""), "{sql}");
        assert!(sql.contains("'applied'"), "{sql}");
        assert!(!sql.contains("lease"), "{sql}");
    }
}

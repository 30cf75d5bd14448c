//! The check that a first run does not re-run a project another tool manages.

use tokio_postgres::Client;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::import::probe::foreign_history;
use crate::refusal::Disagreement;
use crate::store::ledger::AppliedRow;

/// Refuses (exit 32) to start a ledger on a database another tool manages: our ledger is
/// empty and a known tool's history table has rows (`MIGRATE_IGNORE_FOREIGN_HISTORY` lets
/// it pass).
pub(super) async fn check(
    config: &Config,
    client: &Client,
    rows: &[AppliedRow],
    present: Result<Vec<String>>,
) -> Result<()> {
    let present = present?;
    if !rows.is_empty() || config.ignore_foreign_history {
        return Ok(());
    }
    let found = foreign_history(client, &present)
        .await
        .map_err(|e| Error::db("looking for another tool's history table", e))?;
    match found {
        Some((tool, table, rows)) => Err(Error::Disagreement(vec![Disagreement::ForeignHistory {
            tool: tool.to_string(),
            table,
            rows,
        }])),
        None => Ok(()),
    }
}

//! `repair --version V --mark-applied | --mark-not-applied | --accept-checksum`: resolve a
//! dirty mark, or accept a deliberately edited file, with one fenced write under the lease,
//! logged with who did it.

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::log::events;
use crate::refusal::Refusal;
use crate::session::Lease;
use crate::source::Migration;
use crate::store::fence::{AcceptChecksum, FencedWrite, Record, Unrecord};
use crate::store::{Tables, ledger};

/// A repair action (`repair --version V ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// The change is in place: record the migration as applied.
    MarkApplied,
    /// Nothing of it remains: remove its row.
    MarkNotApplied,
    /// The file was edited on purpose: record its new checksum.
    AcceptChecksum,
}

/// Runs `action` on `version` under `lease` (held on another connection).
pub async fn repair(
    client: &Client,
    tables: &Tables,
    set: &[Migration],
    version: i64,
    action: Repair,
    lease: &Lease,
) -> Result<()> {
    let ledger = ledger::read_adopted(client, tables).await?;
    let row = ledger.rows.iter().find(|r| r.version == version);
    let file = set.iter().find(|m| m.version == version);
    let f = &lease.fence;
    let no_file = |action| Error::Refused(Refusal::RepairNoFile { version, action });
    let no_row = |action| Error::Refused(Refusal::RepairNoRow { version, action });
    let n = match action {
        Repair::MarkApplied => {
            let m = file.ok_or_else(|| no_file("cannot mark it applied"))?;
            let write = Record {
                migration: m,
                duration_ms: row.and_then(|r| r.duration_ms),
                fence: f,
                statements_done: row.map(|r| r.statements_done.max(0)).unwrap_or(0),
            };
            client.execute(&Record::sql(tables), &write.params()).await
        }
        Repair::MarkNotApplied => {
            if row.is_none() {
                return Err(no_row("has no row in the ledger; nothing to mark"));
            }
            let write = Unrecord {
                version: &version,
                fence: f,
            };
            client
                .execute(&Unrecord::sql(tables), &write.params())
                .await
        }
        Repair::AcceptChecksum => {
            let m = file.ok_or_else(|| no_file("no checksum to accept"))?;
            if row.is_none() {
                return Err(no_row("is not applied; nothing to accept"));
            }
            let write = AcceptChecksum {
                migration: m,
                fence: f,
            };
            client
                .execute(&AcceptChecksum::sql(tables), &write.params())
                .await
        }
    }
    .map_err(|e| Error::db(format!("repairing version {version}"), e))?;
    if n != 1 {
        return Err(lease.lost_error("the fence check during repair failed".into()));
    }
    tracing::warn!(
        event = events::REPAIR,
        version,
        action = ?action,
        holder = %f.holder,
        fence = f.token,
        previous_status = row.map(|r| if r.dirty { "dirty" } else { "applied" }).unwrap_or("absent"),
        "repair applied"
    );
    Ok(())
}

//! Undo kept in the ledger: a row's stored undo checked against its checksum (and against the
//! file, when this image has one) and rebuilt as a migration the applier runs like a file's.

use std::path::PathBuf;

use crate::source::{Migration, undo_checksum};
use crate::split::split;
use crate::store::ledger::{AppliedRow, StoredUndo};

/// What a row's stored undo is worth to a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kept {
    /// Nothing stored (a row written before undo was stored).
    Nothing,
    /// Stored as irreversible: the migration had no `-- @UNDO` section.
    Irreversible,
    /// Stored and intact: the undo as a migration to run.
    Undo(Box<Migration>),
    /// Stored, but its text or mode does not match its checksum (or its file): why.
    Bad(String),
}

/// The stored undo of `row`, checked; `file` is this image's file of the version, if any.
pub(super) fn kept(row: &AppliedRow, file: Option<&Migration>) -> Kept {
    let (sql, no_transaction, recorded) = match &row.undo {
        StoredUndo::NotStored => return Kept::Nothing,
        StoredUndo::Irreversible => return Kept::Irreversible,
        StoredUndo::Unread => {
            return Kept::Bad("its stored undo was not read (a read without undo texts)".into());
        }
        StoredUndo::Sql {
            sql,
            no_transaction,
            checksum,
        } => (sql, *no_transaction, checksum),
    };
    let computed = undo_checksum(sql, no_transaction);
    if &computed != recorded {
        return Kept::Bad(format!(
            "its stored undo does not match its stored checksum ({} recorded, {} computed): the ledger row was changed",
            short(recorded),
            short(&computed)
        ));
    }
    if let Some(f) = file
        && f.undo_checksum.as_ref() != Some(&computed)
    {
        return Kept::Bad(format!(
            "its stored undo differs from the undo of {} in this image",
            f.path.display()
        ));
    }
    Kept::Undo(Box::new(migration(row, sql, no_transaction, computed)))
}

fn short(sum: &str) -> &str {
    sum.get(..12).unwrap_or(sum)
}

/// The undo of `row` as a migration: no forward section, the stored undo split into statements
/// (their lines are lines of the undo section), the row's description and checksum (the journal
/// of a `@NO_TRANSACTION` undo writes them back unchanged). The ledger keeps no per-file
/// timeouts, so the defaults (`MIGRATE_STATEMENT_TIMEOUT`, `MIGRATE_LOCK_TIMEOUT`) apply.
fn migration(row: &AppliedRow, sql: &str, no_transaction: bool, checksum: String) -> Migration {
    let slug = row.description.replace(' ', "_");
    Migration {
        version: row.version,
        path: PathBuf::from(format!(
            "{}_{slug}.sql (undo kept in the ledger)",
            row.version
        )),
        slug,
        description: row.description.clone(),
        up: String::new(),
        down: Some(sql.to_string()),
        up_statements: Vec::new(),
        down_statements: Some(split(sql)),
        no_transaction,
        statement_timeout: None,
        lock_timeout: None,
        contract: false,
        checksum: row.checksum.clone().unwrap_or_default(),
        undo_checksum: Some(checksum),
    }
}

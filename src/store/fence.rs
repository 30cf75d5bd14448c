//! Fenced writes: every change to the ledger made under the lease carries our holder and fence
//! token and extends the lease in the same statement, so it takes effect only while the lease is
//! ours and unexpired in database time. Writing the lease row inside the migration's transaction
//! means a takeover and our commit cannot both succeed. One typed struct per write, so the bound
//! parameters cannot be passed in the wrong order.

use tokio_postgres::types::ToSql;

use crate::source::Migration;
use crate::store::Tables;

/// The fencing identity every fenced statement carries.
#[derive(Debug, Clone)]
pub struct Fence {
    /// Our holder name.
    pub holder: String,
    /// Our fence token.
    pub token: i64,
    /// The TTL in milliseconds (each fenced write extends the lease by this).
    pub ttl_ms: i64,
}

/// The stored undo's columns, written by every statement that records a migration: its undo
/// section (NULL: irreversible), whether that runs without a transaction (NULL only in rows
/// written before undo was stored) and its checksum (`source::undo_checksum`). They ride in the
/// row's own statement, so they commit with it and cost no round trip.
const UNDO_COLUMNS: &str = "undo_sql, undo_no_transaction, undo_checksum";
/// Their update when the row is already there.
const UNDO_UPDATE: &str = "undo_sql = excluded.undo_sql, undo_no_transaction = excluded.undo_no_transaction, undo_checksum = excluded.undo_checksum";

/// A bound parameter.
pub type Param<'a> = &'a (dyn ToSql + Sync);

/// The renewal of our lease: extends it by the TTL while it is ours (holder and fence) and
/// unexpired in database time. The heartbeat runs it alone; fenced writes run it as a CTE.
/// Arguments are the placeholders (`$n`) of holder, fence and TTL in milliseconds.
pub fn renewal(t: &Tables, holder: &str, fence: &str, ttl: &str) -> String {
    format!(
        "UPDATE {lease} SET expires_at = clock_timestamp() + INTERVAL '1 millisecond' * {ttl}::INT8
            WHERE id = 1 AND holder = {holder}::TEXT AND fence = {fence}::INT8 AND expires_at > clock_timestamp()",
        lease = t.lease()
    )
}

/// The fence check as a data-modifying CTE named `lease_ok`, yielding one row only while the
/// lease is ours.
fn lease_ok(t: &Tables, holder: &str, fence: &str, ttl: &str) -> String {
    format!(
        "lease_ok AS ({} RETURNING fence)",
        renewal(t, holder, fence, ttl)
    )
}

/// A fenced write: its SQL and its bound parameters. Affects one row, or none when the lease
/// is not ours.
pub trait FencedWrite {
    /// The statement.
    fn sql(t: &Tables) -> String;
    /// Its parameters, in order.
    fn params(&self) -> Vec<Param<'_>>;
}

/// Records a migration as applied (or turns a dirty row into an applied one), fenced.
pub struct Record<'a> {
    /// The migration.
    pub migration: &'a Migration,
    /// How long it took; `None`: the time its transaction has run so far, measured by the
    /// server (a pipelined step sends this before its SQL has finished).
    pub duration_ms: Option<i64>,
    /// Our lease identity.
    pub fence: &'a Fence,
    /// Statements done (no-transaction migrations).
    pub statements_done: i64,
}

impl FencedWrite for Record<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         INSERT INTO {l} (version, description, applied_at, checksum, duration_ms, applied_by, fence, status, statements_done, {UNDO_COLUMNS})
         SELECT $1::INT8, $2::TEXT, now(), $3::TEXT,
                COALESCE($4::INT8, (EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000)::INT8),
                $5::TEXT, $6::INT8, 'applied', $8::INT8, $9::TEXT, $10::BOOL, $11::TEXT FROM lease_ok
         ON CONFLICT (version) DO UPDATE SET description = excluded.description, applied_at = excluded.applied_at,
            checksum = excluded.checksum, duration_ms = excluded.duration_ms, applied_by = excluded.applied_by,
            fence = excluded.fence, status = excluded.status, statements_done = excluded.statements_done, {UNDO_UPDATE}",
            lease_ok = lease_ok(t, "$5", "$6", "$7"),
            l = t.ledger()
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        let m = self.migration;
        vec![
            &m.version,
            &m.description,
            &m.checksum,
            &self.duration_ms,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
            &self.statements_done,
            &m.down,
            &m.no_transaction,
            &m.undo_checksum,
        ]
    }
}

/// The fence check at the end of a migration's transaction, pipelined before its ledger
/// write: extends our lease and *raises* (SQLSTATE 22P02, a failed cast naming the fence) when
/// the lease is not ours, so the transaction cannot commit. It writes the lease row, never
/// reads it early: on CockroachDB an early read would fail the read refresh whenever the
/// heartbeat renewed meanwhile. The cast's input depends on `count(*)`, so no planner can fold
/// it into an error at plan time. The fence (`$2`) is cast to INT8 everywhere, then to TEXT for
/// the message, so its type is never ambiguous.
pub struct FenceCheck<'a> {
    /// Our lease identity.
    pub fence: &'a Fence,
}

impl FencedWrite for FenceCheck<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         SELECT CASE WHEN count(*) = 1 THEN 1::INT8
            ELSE ('{marker}: the lease is not ours any more (holder ' || $1::TEXT || ', fence ' || $2::INT8::TEXT || ', ' || count(*)::TEXT || ' rows)')::INT8 END
         FROM lease_ok",
            lease_ok = lease_ok(t, "$1", "$2", "$3"),
            marker = "crdb-migrate fence check failed",
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        vec![&self.fence.holder, &self.fence.token, &self.fence.ttl_ms]
    }
}

/// The ledger write of a transactional step, sent after the [`FenceCheck`] in the same
/// transaction: that check already guards the commit, so this statement does not touch the
/// lease row again. Records the migration (`up`) or removes its row (`down`).
pub enum Checked<'a> {
    /// Record `migration` as applied (duration measured by the server).
    Up {
        /// The migration.
        migration: &'a Migration,
        /// Our lease identity (recorded as `applied_by` and `fence`).
        fence: &'a Fence,
    },
    /// Remove the row of `version`.
    Down {
        /// The version.
        version: &'a i64,
    },
}

impl Checked<'_> {
    /// The statement recording a migration.
    pub fn up_sql(t: &Tables) -> String {
        format!(
            "INSERT INTO {l} (version, description, applied_at, checksum, duration_ms, applied_by, fence, status, statements_done, {UNDO_COLUMNS})
         VALUES ($1::INT8, $2::TEXT, now(), $3::TEXT, (EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000)::INT8,
            $4::TEXT, $5::INT8, 'applied', 0, $6::TEXT, $7::BOOL, $8::TEXT)
         ON CONFLICT (version) DO UPDATE SET description = excluded.description, applied_at = excluded.applied_at,
            checksum = excluded.checksum, duration_ms = excluded.duration_ms, applied_by = excluded.applied_by,
            fence = excluded.fence, status = excluded.status, statements_done = excluded.statements_done, {UNDO_UPDATE}",
            l = t.ledger()
        )
    }

    /// The statement removing a row.
    pub fn down_sql(t: &Tables) -> String {
        format!("DELETE FROM {} WHERE version = $1::INT8", t.ledger())
    }

    /// The parameters of [`Checked::up_sql`] or [`Checked::down_sql`].
    pub fn params(&self) -> Vec<Param<'_>> {
        match self {
            Checked::Up {
                migration: m,
                fence,
            } => vec![
                &m.version,
                &m.description,
                &m.checksum,
                &fence.holder,
                &fence.token,
                &m.down,
                &m.no_transaction,
                &m.undo_checksum,
            ],
            Checked::Down { version } => vec![*version],
        }
    }
}

/// Removes a migration's row (an undo, or `repair --mark-not-applied`), fenced.
pub struct Unrecord<'a> {
    /// The version.
    pub version: &'a i64,
    /// Our lease identity.
    pub fence: &'a Fence,
}

impl FencedWrite for Unrecord<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         DELETE FROM {l} WHERE version = $1::INT8 AND EXISTS (SELECT 1 FROM lease_ok)",
            lease_ok = lease_ok(t, "$2", "$3", "$4"),
            l = t.ledger()
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        vec![
            self.version,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
        ]
    }
}

/// Marks a migration dirty with its journal position, fenced, in its own transaction (after a
/// failure that may have left part of it applied, or as a no-transaction step's journal).
pub struct MarkDirty<'a> {
    /// The migration.
    pub migration: &'a Migration,
    /// The journal: statements done (negative while undoing).
    pub statements_done: i64,
    /// Our lease identity.
    pub fence: &'a Fence,
}

impl FencedWrite for MarkDirty<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         INSERT INTO {l} (version, description, applied_at, checksum, applied_by, fence, status, statements_done, {UNDO_COLUMNS})
         SELECT $1::INT8, $2::TEXT, now(), $3::TEXT, $5::TEXT, $6::INT8, 'dirty', $4::INT8, $8::TEXT, $9::BOOL, $10::TEXT FROM lease_ok
         ON CONFLICT (version) DO UPDATE SET status = 'dirty', statements_done = excluded.statements_done,
            checksum = excluded.checksum, applied_by = excluded.applied_by, fence = excluded.fence, {UNDO_UPDATE}",
            lease_ok = lease_ok(t, "$5", "$6", "$7"),
            l = t.ledger()
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        let m = self.migration;
        vec![
            &m.version,
            &m.description,
            &m.checksum,
            &self.statements_done,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
            &m.down,
            &m.no_transaction,
            &m.undo_checksum,
        ]
    }
}

/// Puts a row back to `applied` with its statement count: an undo journaled as in progress
/// whose first statement failed, so nothing of the undo ran (fenced).
pub struct Restore<'a> {
    /// The version.
    pub version: &'a i64,
    /// The statements of its forward section.
    pub statements_done: i64,
    /// Our lease identity.
    pub fence: &'a Fence,
}

impl FencedWrite for Restore<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         UPDATE {l} SET status = 'applied', statements_done = $2::INT8 WHERE version = $1::INT8 AND EXISTS (SELECT 1 FROM lease_ok)",
            lease_ok = lease_ok(t, "$3", "$4", "$5"),
            l = t.ledger()
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        vec![
            self.version,
            &self.statements_done,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
        ]
    }
}

/// Replaces a row's checksum and stored undo with the file's (`repair --accept-checksum`),
/// fenced: the edited file's undo is the one a rollback will run.
pub struct AcceptChecksum<'a> {
    /// The file.
    pub migration: &'a Migration,
    /// Our lease identity.
    pub fence: &'a Fence,
}

impl FencedWrite for AcceptChecksum<'_> {
    fn sql(t: &Tables) -> String {
        format!(
            "WITH {lease_ok}
         UPDATE {l} SET checksum = $2::TEXT, undo_sql = $6::TEXT, undo_no_transaction = $7::BOOL, undo_checksum = $8::TEXT
         WHERE version = $1::INT8 AND EXISTS (SELECT 1 FROM lease_ok)",
            lease_ok = lease_ok(t, "$3", "$4", "$5"),
            l = t.ledger()
        )
    }

    fn params(&self) -> Vec<Param<'_>> {
        let m = self.migration;
        vec![
            &m.version,
            &m.checksum,
            &self.fence.holder,
            &self.fence.token,
            &self.fence.ttl_ms,
            &m.down,
            &m.no_transaction,
            &m.undo_checksum,
        ]
    }
}

#[cfg(test)]
mod tests;

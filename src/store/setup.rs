//! Creating the bookkeeping on first use (the statements; `session::acquire` sends them in its
//! first flight) and adopting a ledger made by an older tool. Every
//! statement is idempotent (`IF NOT EXISTS`, `ON CONFLICT DO NOTHING`), and a race lost to a
//! concurrent runner (see `sqlstate::is_setup_race`) is re-checked with backoff, never an error.

use tokio_postgres::Client;

use crate::backoff;
use crate::error::{Error, Result};
use crate::log::events;
use crate::store::Tables;

/// The statements creating the ledger and lease tables and the lease row.
pub fn create_sql(t: &Tables) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {l} (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            checksum TEXT,
            duration_ms BIGINT,
            applied_by TEXT,
            fence BIGINT,
            status TEXT NOT NULL DEFAULT 'applied',
            statements_done BIGINT NOT NULL DEFAULT 0,
            undo_sql TEXT,
            undo_no_transaction BOOLEAN,
            undo_checksum TEXT
        );
        CREATE TABLE IF NOT EXISTS {lease} (
            id INT8 PRIMARY KEY,
            holder TEXT,
            fence INT8 NOT NULL DEFAULT 0,
            expires_at TIMESTAMPTZ,
            acquired_at TIMESTAMPTZ,
            owner TEXT,
            owner_seq INT8,
            schema_version INT8,
            schema_hash TEXT,
            schema_objects TEXT
        );
        INSERT INTO {lease} (id, fence) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        l = t.ledger(),
        lease = t.lease()
    )
}

/// The statements adding our columns to a ledger made by an older tool (three columns) or by an
/// older crdb-migrate (no stored undo), one per column. They are sent as
/// separate queries (pipelined, one round trip), not as one multi-statement batch: on
/// CockroachDB only a single-statement implicit transaction goes to the declarative schema
/// changer (`planner.SchemaChange`, `pkg/sql/schema_change_plan_node.go`), the one that unlocks a
/// `schema_locked` table by itself; a batch goes to the legacy one, which refuses any DDL on such
/// a table (cockroachdb/cockroach#166246). From v26.1 a table another tool created outside an
/// explicit transaction is `schema_locked` by default (cockroachdb/cockroach#148576).
pub fn adopt_sql(t: &Tables) -> Vec<String> {
    [
        "checksum TEXT",
        "duration_ms BIGINT",
        "applied_by TEXT",
        "fence BIGINT",
        "status TEXT NOT NULL DEFAULT 'applied'",
        "statements_done BIGINT NOT NULL DEFAULT 0",
        "undo_sql TEXT",
        "undo_no_transaction BOOLEAN",
        "undo_checksum TEXT",
    ]
    .iter()
    .map(|column| {
        format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {column}",
            t.ledger()
        )
    })
    .collect()
}

/// The statements adding the acquisition's owner columns (see `store::owner`) to a lease table
/// made by an earlier version of this tool, one per column and each sent alone, for the reason
/// given at [`adopt_sql`]. Sent only when the acquisition found them missing (42703), so a run
/// on tables made with them sends nothing more.
pub fn lease_owner_sql(t: &Tables) -> Vec<String> {
    ["owner TEXT", "owner_seq INT8"]
        .iter()
        .map(|column| {
            format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {column}",
                t.lease()
            )
        })
        .collect()
}

/// Adds the owner columns to a lease table made by an earlier version (see [`lease_owner_sql`]).
pub async fn add_lease_owner(client: &Client, t: &Tables) -> Result<()> {
    let sqls = lease_owner_sql(t);
    tolerating_races(client, "adding the lease's owner columns", || async {
        let replies =
            crate::pipeline::in_order(sqls.iter().map(|sql| client.batch_execute(sql)).collect())
                .await;
        match replies.into_iter().find_map(|r| r.err()) {
            Some(e) => Err(Error::db(
                format!("adding owner columns to {}", t.lease()),
                e,
            )),
            None => Ok(()),
        }
    })
    .await
}

/// Runs `op` (idempotent setup), re-running it with backoff while it loses races to peers
/// (`sqlstate::is_setup_race`). A race lost ten times in a row is no race but a standing
/// conflict (a type already named like our table, ...): its error is returned as it is.
/// Any other error is returned at once.
async fn tolerating_races<F, Fut>(client: &Client, what: &str, mut op: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut delays = backoff::setup_race();
    loop {
        let err = match op().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(code) = err
            .sqlstate()
            .map(|c| c.code())
            .filter(|c| crate::sqlstate::is_setup_race(c))
        else {
            return Err(err);
        };
        let Some(delay) = delays.next() else {
            tracing::warn!(
                event = events::SETUP_RACE,
                what,
                sqlstate = code,
                "the conflict outlasted every re-check: not a race with a peer"
            );
            return Err(err);
        };
        tracing::info!(
            event = events::SETUP_RACE,
            what,
            sqlstate = code,
            delay_ms = delay.as_millis() as u64,
            "another runner set this up at the same moment; re-checking"
        );
        // Ends the failed implicit transaction, if the server left one open.
        let _ = client.batch_execute("ROLLBACK").await;
        tokio::time::sleep(delay).await;
    }
}

/// Adds our columns to a ledger made by an older tool and widens its `version` to BIGINT;
/// its rows stay, with NULL checksums.
pub async fn adopt(client: &Client, t: &Tables) -> Result<()> {
    let sqls = adopt_sql(t);
    tolerating_races(client, "adopting the ledger", || async {
        let replies =
            crate::pipeline::in_order(sqls.iter().map(|sql| client.batch_execute(sql)).collect())
                .await;
        match replies.into_iter().find_map(|r| r.err()) {
            Some(e) => Err(Error::db(format!("adopting {}", t.ledger()), e)),
            None => Ok(()),
        }
    })
    .await?;
    // An older tool's `version INTEGER` is int4 on PostgreSQL (and on CockroachDB under
    // `default_int_size = 4`; there `INTEGER` is INT8 by default and nothing is widened):
    // timestamp versions would not fit. On CockroachDB widening an integer is a "trivial"
    // conversion (`schemachange.ClassifyConversion`: the key and value encodings of INT4 and
    // INT8 are the same), a descriptor change without a backfill, allowed on a primary key. Our
    // own tables say BIGINT / INT8, which `default_int_size` does not touch.
    let version_type = client
        .query_opt(
            "SELECT data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'version'",
            &[&t.name()],
        )
        .await
        .map_err(|e| Error::db(format!("adopting {}", t.ledger()), e))?
        .map(|row| row.get::<_, String>(0));
    let widened = matches!(version_type.as_deref(), Some("integer" | "smallint"));
    if widened {
        let sql = format!(
            "ALTER TABLE {} ALTER COLUMN version TYPE BIGINT",
            t.ledger()
        );
        tolerating_races(client, "widening the ledger's version", || async {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::db(format!("widening {}.version to BIGINT", t.ledger()), e))
        })
        .await?;
    }
    tracing::info!(
        event = events::LEDGER_ADOPTED,
        table = %t.ledger(),
        widened_version = widened,
        "adopted a ledger made by an older tool (or an older crdb-migrate): added columns, kept its rows"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TableName;

    #[test]
    fn adoption_is_one_statement_per_query() {
        let sqls = adopt_sql(&Tables::new(&TableName::default()));
        assert_eq!(sqls.len(), 9);
        for sql in &sqls {
            assert!(
                sql.starts_with("ALTER TABLE \"_migrations\" ADD COLUMN IF NOT EXISTS "),
                "{sql}"
            );
            assert!(!sql.contains(';'), "{sql}");
        }
    }

    #[test]
    fn the_owner_columns_are_created_and_added_one_statement_per_query() {
        let t = Tables::new(&TableName::default());
        let sqls = lease_owner_sql(&t);
        assert_eq!(sqls.len(), 2);
        for sql in &sqls {
            assert!(
                sql.starts_with("ALTER TABLE \"_migrations_lease\" ADD COLUMN IF NOT EXISTS owner"),
                "{sql}"
            );
            assert!(!sql.contains(';'), "{sql}");
        }
        let create = create_sql(&t);
        assert!(create.contains("owner TEXT,") && create.contains("owner_seq INT8"));
    }
}

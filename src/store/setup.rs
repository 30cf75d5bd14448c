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
        l = t.ledger(),
        lease = t.lease()
    )
}

/// The statements adding our columns to a seed-made ledger.
pub fn adopt_sql(t: &Tables) -> String {
    format!(
        "ALTER TABLE {l} ADD COLUMN IF NOT EXISTS checksum TEXT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS duration_ms BIGINT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS applied_by TEXT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS fence BIGINT;
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS status TEXT NOT NULL DEFAULT 'applied';
         ALTER TABLE {l} ADD COLUMN IF NOT EXISTS statements_done BIGINT NOT NULL DEFAULT 0;",
        l = t.ledger()
    )
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
    let sql = adopt_sql(t);
    tolerating_races(client, "adopting the ledger", || async {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::db(format!("adopting {}", t.ledger()), e))
    })
    .await?;
    // The seed's `version INTEGER` is int4 on PostgreSQL: timestamp versions would not fit.
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
        "adopted a ledger made by an older tool: added columns, kept its rows"
    );
    Ok(())
}

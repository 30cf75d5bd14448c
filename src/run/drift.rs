//! Drift: the live schema against the snapshot stored after the last run that did work. Before
//! applying (once per run, only when there is work) `check` compares them when the database is
//! still at the stored version, and warns or refuses (`MIGRATE_ON_DRIFT`); after the last step
//! `store` takes the new snapshot and stores it on the lease row, fenced. A run with nothing to
//! do reaches neither, so its cost does not grow.

use tokio_postgres::Client;

use crate::config::{Config, OnDrift};
use crate::connect::ServerInfo;
use crate::error::{Error, Result};
use crate::log::events;
use crate::refusal::Disagreement;
use crate::session::Lease;
use crate::snapshot::Snapshot;
use crate::store::{Tables, schema};

/// The drift since the stored snapshot, when the database is still at its version: `None`
/// when nothing was stored, the version moved on, or nothing changed.
pub(crate) async fn drift_of(
    client: &Client,
    info: &ServerInfo,
    tables: &Tables,
    current: i64,
) -> Result<Option<Disagreement>> {
    let Some(stored) = schema::stored(client, tables).await? else {
        return Ok(None);
    };
    if stored.version != current {
        return Ok(None);
    }
    let live = Snapshot::read(client, info, tables).await?;
    if live.hash() == stored.hash {
        return Ok(None);
    }
    let changes = stored.snapshot.diff(&live);
    Ok((!changes.is_empty()).then_some(Disagreement::SchemaDrift {
        version: stored.version,
        changes,
    }))
}

/// Before applying: warns about drift (`schema.drift`) and goes on, or refuses (exit 32).
pub(super) async fn check(
    config: &Config,
    client: &Client,
    info: &ServerInfo,
    tables: &Tables,
    current: i64,
) -> Result<()> {
    let Some(drift) = drift_of(client, info, tables, current).await? else {
        return Ok(());
    };
    match config.on_drift {
        OnDrift::Refuse => Err(Error::Disagreement(vec![drift])),
        OnDrift::Warn => {
            tracing::warn!(
                event = events::SCHEMA_DRIFT,
                version = current,
                drift = %drift,
                "the schema was changed by hand since the last run; going on (MIGRATE_ON_DRIFT=warn)"
            );
            Ok(())
        }
    }
}

/// After the last step: stores the live snapshot as the schema at `version`, fenced by our
/// lease. A lost connection is the caller's to recover from; any other failure only warns:
/// the migrations are applied and recorded, and the next run that does work stores it.
pub(super) async fn store(
    client: &Client,
    info: &ServerInfo,
    tables: &Tables,
    lease: &Lease,
    version: i64,
) -> Result<()> {
    let stored = async {
        let live = Snapshot::read(client, info, tables).await?;
        schema::store(client, tables, &lease.fence, version, &live).await
    };
    match stored.await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(
                event = events::LEASE_LOST,
                version,
                "the schema snapshot was not stored: the lease is not ours any more"
            );
            Ok(())
        }
        Err(e) if e.is_connection_lost() => Err(e),
        Err(e) => {
            tracing::warn!(
                event = events::SCHEMA_NOT_STORED,
                version,
                error = %e,
                "the schema snapshot could not be stored; drift is not checked until the next run stores one"
            );
            Ok(())
        }
    }
}

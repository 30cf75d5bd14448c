//! The lease as a run uses it: taken on a connection of its own, and consulted when a step
//! fails, to tell a runner fenced off by a peer (exit 12) from a genuine failure.

use std::sync::Arc;

use tokio_postgres::Client;

use crate::config::Config;
use crate::connect;
use crate::error::{Error, Result};
use crate::log::events;
use crate::session::{self, Lease, LeaseConn, Reread};
use crate::store::{Tables, lease};

use super::Stop;
use super::reuse::Tenant;

/// Checks, on a new migration connection, that the lease is still ours.
pub(super) async fn still_ours(client: &Client, tables: &Tables, lease: &Lease) -> Result<()> {
    match lease::is_ours(client, tables, &lease.fence).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(lease.lost_error("after reconnecting, the lease was expired or taken".into()))
        }
        Err(e) => Err(Error::db("checking the lease after reconnecting", e)),
    }
}

/// Opens the lease's connection and takes the lease, creating the bookkeeping first if needed;
/// also returns the ledger as the acquisition's flight read it.
pub(crate) async fn take_lease(
    config: &Config,
    tables: &Tables,
    stop: &Stop,
) -> Result<(Lease, Reread)> {
    take_lease_on(config, tables, stop, None).await
}

/// As [`take_lease`], on `reused` (a lease connection an earlier target of a fleet gave back)
/// once it is reset; on a new connection when there is none or the reset fails.
pub(super) async fn take_lease_on(
    config: &Config,
    tables: &Tables,
    stop: &Stop,
    reused: Option<(Arc<Client>, &Tenant)>,
) -> Result<(Lease, Reread)> {
    let url = stop.url(config)?;
    let side = match reused {
        Some((side, tenant)) if tenant.reset_side(&side).await.is_ok() => side,
        _ => Arc::new(connect::wait_and_connect_side(url, config.wait_timeout).await?),
    };
    let conn = LeaseConn::new(side, url.clone(), config.wait_timeout);
    let (holder, ttl, timeout) = (&config.holder, config.lease_ttl, config.lease_timeout);
    session::acquire(conn, tables, holder, ttl, timeout, stop.token()).await
}

/// `result`, with an error turned into a lease loss when the lease is no longer ours (see
/// [`fenced_off_or`]).
pub(super) async fn unless_fenced_off(lease: &Lease, result: Result<()>) -> Result<()> {
    match result {
        Err(e) if may_be_fenced_off(&e) => Err(fenced_off_or(lease, e).await),
        r => r,
    }
}

/// Errors a step can meet because a peer took the lease while we worked (a frozen holder
/// woken after a takeover: its connection ended by the server, its `CREATE TABLE` finding the
/// peer's table, ...). Not a dirty mark (31): that needs an operator whatever the lease says.
fn may_be_fenced_off(e: &Error) -> bool {
    !matches!(
        e,
        Error::LeaseLost { .. } | Error::Terminated | Error::PartiallyApplied { .. }
    )
}

/// `e`, or a lease loss (exit 12) when the lease is no longer ours: nothing of the failed step
/// was committed (the fenced ledger write is in its transaction), and a runner fenced off must
/// be retried (12, Count), not fail the Job (30) or blame the network (10) for what its
/// successor did. A genuine failure shows up again, as itself, in the next holder's run.
async fn fenced_off_or(lease: &Lease, e: Error) -> Error {
    match lease.still_ours().await {
        Some(false) => {
            tracing::error!(
                event = events::LEASE_LOST,
                holder = %lease.fence.holder,
                fence = lease.fence.token,
                error = %e,
                "lease lost while working: it expired or another runner took it"
            );
            lease.lost_error(format!(
                "the lease expired or was taken while working ({e})"
            ))
        }
        _ => e,
    }
}

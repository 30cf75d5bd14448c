//! Drift: the live schema against the one stored after the last run that did work, cheaply.
//! Under the lease, a one-row read of what is stored rides in the flight that prepares the
//! migration session; when the plan says the database is still at the stored version,
//! [`check`] has the server build the live per-object hashes and compare them with the stored
//! hash (one round trip; both lists come back only when they differ), and warns or refuses
//! (`MIGRATE_ON_DRIFT`); at the end [`store_and_release`] sends the fenced store, again built
//! by the server, in the release's flight. On CockroachDB the client reads the snapshot instead
//! (`SHOW CREATE ALL ...` cannot run inside a query): the same round trip at the check, and one
//! more before the release. A run with nothing to do reaches none of it.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Client;

use crate::config::{Config, OnDrift};
use crate::connect::{Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::log::events;
use crate::refusal::Disagreement;
use crate::snapshot::{Objects, Snapshot, text_hash};
use crate::store::schema::{self, Stored};
use crate::store::{Tables, fence::Fence};

/// One run's drift bookkeeping: whether the check is done (once per run, before the first
/// step), and the version to store at the release (set when a plan was applied in full).
#[derive(Default)]
pub(super) struct State {
    checked: AtomicBool,
    reached: Mutex<Option<i64>>,
}

impl State {
    /// A plan was applied in full: the release stores the schema at `version`.
    pub(super) fn reached(&self, version: i64) {
        if let Ok(mut r) = self.reached.lock() {
            *r = Some(version);
        }
    }
}

/// What the prepare flight read: `None` once the run's check is done.
pub(super) type Read = Option<Result<Option<Stored>>>;

/// The read for the prepare flight, until the run's check is done (under the lease: a lease
/// table made before the columns gets them here).
pub(super) async fn read(state: &State, client: &Client, info: &ServerInfo, t: &Tables) -> Read {
    if state.checked.load(Ordering::Relaxed) {
        return None;
    }
    Some(schema::read(client, t, info.flavour, true).await)
}

/// The drift since `stored` when the database is still at its version: `None` when nothing
/// was stored, the version moved on, or nothing changed.
async fn drift_from(
    client: &Client,
    info: &ServerInfo,
    t: &Tables,
    stored: Option<Stored>,
    current: i64,
) -> Result<Option<Disagreement>> {
    let Some(stored) = stored.filter(|s| s.version == current) else {
        return Ok(None);
    };
    let (before, live) = match info.flavour {
        Flavour::PostgreSQL => match schema::compare(client, t, &stored.hash).await? {
            None => return Ok(None),
            Some(both) => both,
        },
        Flavour::CockroachDB => {
            let live = Objects::of(&Snapshot::read(client, info, t).await?);
            if text_hash(&live.text()) == stored.hash {
                return Ok(None);
            }
            (stored.objects.unwrap_or_default(), live)
        }
    };
    let changes = before.diff(&live);
    Ok((!changes.is_empty()).then_some(Disagreement::SchemaDrift {
        version: stored.version,
        changes,
    }))
}

/// For `status`: the drift at `current` (read only: an old lease table is left as it is).
pub(crate) async fn drift_of(
    client: &Client,
    info: &ServerInfo,
    t: &Tables,
    current: i64,
) -> Result<Option<Disagreement>> {
    let stored = schema::read(client, t, info.flavour, false).await?;
    drift_from(client, info, t, stored, current).await
}

/// Before the first step, once per run: warns about drift (`schema.drift`) and goes on, or
/// refuses (exit 32) with nothing applied.
pub(super) async fn check(
    state: &State,
    config: &Config,
    (client, info, t): (&Client, &ServerInfo, &Tables),
    stored: Read,
    current: i64,
) -> Result<()> {
    let Some(stored) = stored else { return Ok(()) };
    if state.checked.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    let Some(drift) = drift_from(client, info, t, stored?, current).await? else {
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

/// Releases the lease (`release`), and when the run applied a plan in full first stores the
/// schema at the version it reached, on the lease's connection in the same flight (fenced by
/// the lease row's holder and fence). A store that fails only warns: the migrations are
/// applied and recorded, and the next run that does work stores it.
pub(super) async fn store_and_release(
    state: &State,
    leased: &super::Leased,
    t: &Tables,
    release: impl Future<Output = ()>,
) {
    let (lease, info) = (&leased.lease, &leased.session.info);
    let Some(version) = state.reached.lock().ok().and_then(|r| *r) else {
        return release.await;
    };
    let client = lease.client();
    let objects = match info.flavour {
        Flavour::PostgreSQL => None,
        Flavour::CockroachDB => match Snapshot::read(&client, info, t).await {
            Ok(s) => Some(Objects::of(&s)),
            Err(e) => {
                release.await;
                return not_stored(version, &e);
            }
        },
    };
    let fence: &Fence = &lease.fence;
    let store = schema::store(&client, t, info.flavour, fence, version, objects.as_ref());
    let (stored, ()) = tokio::join!(store, release);
    match stored {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            event = events::LEASE_LOST,
            version,
            "the schema snapshot was not stored: the lease is not ours any more"
        ),
        Err(e) => not_stored(version, &e),
    }
}

fn not_stored(version: i64, e: &Error) {
    tracing::warn!(
        event = events::SCHEMA_NOT_STORED,
        version,
        error = %e,
        "the schema snapshot could not be stored; drift is not checked until the next run stores one"
    );
}

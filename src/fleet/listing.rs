//! `status` over a fleet: every target's report, at most `MIGRATE_PARALLELISM` at a time, in
//! list order, with the files loaded once and schema targets' connections handed from one
//! target to the next as a fleet's runs hand them (`run::reuse`): a backend started per target
//! would cost more than the report, and the drift comparison plans faster on a warm one.

use futures_util::{Stream, StreamExt};
use tracing::Instrument;

use super::{Fleet, Target};
use crate::error::{Error, Result};
use crate::migrator::{Migrator, StatusFiles};
use crate::run::{Pool, Set, Tenant};
use crate::status::Status;

impl Fleet {
    /// Every target's `status` report, as they come, in list order. A schema target whose
    /// first schema does not exist gets the same refusal as its `migrate` (exit 20).
    pub fn statuses(&self) -> impl Stream<Item = (&Target, Result<Status>)> + '_ {
        let files = std::sync::Arc::new(Migrator::new(self.config.clone()).status_files());
        let pool = Pool::new(self.config.fleet.parallelism);
        let parallelism = self.config.fleet.parallelism;
        futures_util::stream::iter(&self.targets)
            .map(move |t| {
                let span = tracing::error_span!("target", target = %t.name());
                let (m, pool, files) = (
                    Migrator::new(self.config_of(t)),
                    pool.clone(),
                    files.clone(),
                );
                let work = async move {
                    match files.as_ref() {
                        Ok(files) => status_of(&m, &pool, t.name(), files).await,
                        // Not loadable at all: each target's own report says why.
                        Err(_) => m.status().await,
                    }
                };
                async move { (t, work.instrument(span).await) }
            })
            .buffered(parallelism)
    }
}

/// One target's report, on a connection an earlier schema target gave back when one is idle.
async fn status_of(m: &Migrator, pool: &Pool, name: &str, files: &StatusFiles) -> Result<Status> {
    let Some(tenant) = m.url().ok().and_then(|url| pool.tenant(name, url)) else {
        let (client, info) = m.connect().await?;
        return m.status_on(&client, &info, files).await;
    };
    let mut reused = None;
    if let Some(set) = tenant.take() {
        match tenant.prepare(&set.client, true).await {
            Ok(true) => reused = Some((set.client, set.info)),
            Ok(false) => {
                // The connection is sound (only the schema is missing): the next target's.
                tenant.give_back(set);
                return Err(tenant.missing());
            }
            Err(_) => {} // a broken connection: dropped, and a new one made
        }
    }
    let (client, info) = match reused {
        Some(session) => session,
        None => {
            let (client, info) = m.connect().await?;
            checked(&tenant, &client).await?;
            (client, info)
        }
    };
    let status = m.status_on(&client, &info, files).await;
    if status.is_ok() {
        tenant.give_back(Set {
            client,
            info,
            side: None,
        });
    }
    status
}

/// A fresh connection's check that the target's first schema exists.
async fn checked(tenant: &Tenant, client: &tokio_postgres::Client) -> Result<()> {
    match tenant.prepare(client, false).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(tenant.missing()),
        Err(e) => Err(Error::db("checking the target's schema", e)),
    }
}

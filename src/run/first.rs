//! A run's migration connection: a new one, or one an earlier schema target of a fleet gave
//! back (see `reuse`), and its first read; and giving the connections back after a clean end.

use std::sync::Arc;

use tokio_postgres::Client;

use super::reuse::{Set, Tenant};
use super::{FirstRead, Ready, Run, Session};
use crate::connect;
use crate::error::{Error, Result};
use crate::import::probe::history_tables;
use crate::store::ledger;

impl Run {
    /// A schema target that ended cleanly gives its connections back for the next target
    /// (unless a signal came); any other run's close when dropped.
    pub(super) fn keep(&self, session: Session, side: Option<Arc<Client>>) {
        if let Some(tenant) = &self.tenant
            && !self.stop.is_cancelled()
        {
            let spare = self.spare_side.lock().ok().and_then(|mut s| s.take());
            let (client, info) = (session.client, session.info);
            let side = side.or(spare);
            tenant.give_back(Set { client, info, side });
        }
    }

    /// Connect: waits for the database (creating it if so configured), or takes a connection
    /// an earlier schema target gave back; sends the first read.
    pub(super) async fn connect(&self) -> Result<Ready> {
        if let Some(set) = self.tenant.as_ref().and_then(Tenant::take) {
            let (client, info) = (set.client, set.info);
            if let Some(ready) = self.first_read(Session { client, info }, true).await {
                if let Ok(mut spare) = self.spare_side.lock() {
                    *spare = set.side;
                }
                return Ok(ready);
            }
        }
        let url = self.stop.url(&self.config)?;
        let (client, info) =
            connect::wait_and_connect(url, self.config.wait_timeout, self.config.create_database)
                .await?;
        let ready = self.first_read(Session { client, info }, false).await;
        Ok(ready.expect("only a reused connection's reset gives up"))
    }

    /// The first read, in one flight: a schema target's reset (`reused`) and schema check,
    /// the ledger, other tools' history tables. `None`: the reset of a reused connection
    /// failed (it is dropped, and a new one made).
    async fn first_read(&self, session: Session, reused: bool) -> Option<Ready> {
        let client = &session.client;
        let check = async {
            match &self.tenant {
                Some(tenant) => Some(tenant.prepare(client, reused).await),
                None => None,
            }
        };
        let (check, ledger, present) = tokio::join!(
            check,
            ledger::read(client, &self.tables),
            history_tables(client)
        );
        let checked = match (check, &self.tenant) {
            (Some(Err(_)), _) if reused => return None,
            (Some(Err(e)), _) => Err(Error::db("checking the target's schema", e)),
            (Some(Ok(false)), Some(tenant)) => Err(tenant.missing()),
            _ => Ok(()),
        };
        let first = checked.and(ledger).map(|ledger| FirstRead {
            ledger,
            present: present.map_err(|e| Error::db("looking for other tools' history tables", e)),
        });
        Some(Ready { session, first })
    }
}

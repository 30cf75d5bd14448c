//! The flight that readies a leased migration connection: the session settings, the ledger
//! statements, the stored schema for the drift check, and (when the rows are not read yet on
//! this connection) the ledger read, all sent together.

use crate::apply::Applier;
use crate::error::Result;
use crate::flavour;
use crate::session::{Lease, Reread};
use crate::store::ledger;

use super::{Prepared, Run, Session, drift};

impl Run {
    /// The session settings and the ledger statements in one flight; a three-column ledger (or
    /// one not read yet on this connection) is adopted and read first.
    pub(super) async fn prepare<'a>(
        &'a self,
        session: &'a Session,
        lease: &'a Lease,
        reread: Reread,
    ) -> Result<Prepared<'a>> {
        let client = &session.client;
        let prepared = flavour::prepare_session(
            client,
            session.info.flavour,
            self.config.statement_timeout,
            self.config.lease_ttl,
            self.config.environment.as_deref().unwrap_or(""),
        );
        let cancel = self.stop.token();
        let drift = drift::read(&self.drift, client, &session.info, &self.tables);
        let (pid, rows, applier, drift) = match reread {
            Reread::Rows(rows) => {
                let statements = Applier::new(client, &self.tables, lease, cancel);
                let (pid, applier, drift) = tokio::join!(prepared, statements, drift);
                (pid?, rows, applier?, drift)
            }
            Reread::ReadAgain => {
                let (pid, ledger, drift) =
                    tokio::join!(prepared, ledger::read_adopted(client, &self.tables), drift);
                let applier = Applier::new(client, &self.tables, lease, cancel).await?;
                (pid?, ledger?.rows, applier, drift)
            }
        };
        Ok(Prepared {
            pid,
            rows,
            applier,
            drift,
        })
    }
}

//! Loading the migration files while the migration connection is made and the run's first
//! read (the ledger, and which other tools' history tables exist) is in flight: a run costs
//! about the slower of the two instead of their sum. The files are read a few at a time on the
//! run's own thread, yielding between them, so the handshake and the read go on meanwhile (no
//! thread, no second allocator arena). Bad files still win: their error is returned whatever
//! the database did, and nothing here writes (a run that may create the database loads first,
//! so bad files never leave a new database behind).

use std::future::Future;

use tokio_postgres::Client;

use crate::connect::ServerInfo;
use crate::error::{Error, Result};
use crate::import::probe::history_tables;
use crate::migrator::Migrator;
use crate::source::Migration;
use crate::store::Tables;
use crate::store::ledger::{self, Ledger};

/// Files read between two yields: about half a millisecond of work for small files.
const FILES_PER_TURN: usize = 32;

/// The run's first read: the ledger, and which other tools' history tables exist (asked in
/// the same flight, for the check that a first run does not re-run a project another tool
/// manages).
pub(crate) type FirstRead = (Result<Ledger>, Result<Vec<String>, tokio_postgres::Error>);

/// Sends the first read as one flight.
pub(crate) async fn first_read(client: &Client, tables: &Tables) -> FirstRead {
    tokio::join!(ledger::read(client, tables), history_tables(client))
}

/// A migration connection made, and its first read, for the run's first attempt.
pub(crate) struct Ready {
    pub(crate) client: Client,
    pub(crate) info: ServerInfo,
    pub(crate) first: FirstRead,
}

impl Migrator {
    /// The migration set, and the connection made and read while it loaded (`None` when the
    /// run may create the database: then nothing connects before the files are known good).
    pub(crate) async fn load_connected(&self) -> Result<(Vec<Migration>, Option<Ready>)> {
        if self.config.create_database {
            return Ok((self.load()?, None));
        }
        let connecting = self.connect();
        tokio::pin!(connecting);
        let mut connected = None;
        look(&mut connecting, &mut connected).await;
        let mut loading = self.loading()?;
        let mut loaded = false;
        while connected.is_none() && !loaded {
            loaded = loading.read_some(FILES_PER_TURN);
            look(&mut connecting, &mut connected).await;
        }
        let (client, info) = match connected {
            Some(Ok(made)) => made,
            // The files' problems come first, as when they were loaded before connecting.
            Some(Err(e)) => {
                loading.finish().map_err(Error::Source)?;
                return Err(e);
            }
            None => {
                let set = loading.finish().map_err(Error::Source)?;
                let (client, info) = connecting.await?;
                let first = first_read(&client, &self.tables).await;
                return Ok((
                    set,
                    Some(Ready {
                        client,
                        info,
                        first,
                    }),
                ));
            }
        };
        let (set, first) = {
            let reading = first_read(&client, &self.tables);
            tokio::pin!(reading);
            let mut read = None;
            while !loaded {
                look(&mut reading, &mut read).await;
                loaded = loading.read_some(FILES_PER_TURN);
            }
            let set = loading.finish().map_err(Error::Source)?;
            let first = match read {
                Some(r) => r,
                None => reading.await,
            };
            (set, first)
        };
        Ok((
            set,
            Some(Ready {
                client,
                info,
                first,
            }),
        ))
    }
}

/// One look at `pending`, unless it is done: its next step when the reply is in, then back to
/// the files (a yield lets the runtime poll the socket).
async fn look<F: Future + Unpin>(pending: &mut F, done: &mut Option<F::Output>) {
    if done.is_none() {
        tokio::select! {
            biased;
            out = pending => *done = Some(out),
            _ = tokio::task::yield_now() => {}
        }
    }
}

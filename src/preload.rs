//! Loading the migration files while the migration connection is made: a run costs the slower
//! of the two instead of their sum. Bad files still win: their error is returned whatever the
//! connection did, and the connection attempt never writes (a run that may create the database
//! loads first, so bad files never leave a new database behind).

use tokio_postgres::Client;

use crate::connect::ServerInfo;
use crate::error::{Error, Result};
use crate::migrator::{Migrator, load_dir};
use crate::source::Migration;

/// The connection [`Migrator::load_connected`] made, for the run's first attempt.
pub(crate) type Connected = Option<(Client, ServerInfo)>;

impl Migrator {
    /// The migration set, and the migration connection made while it loaded (`None` when the
    /// run may create the database: then nothing connects before the files are known good).
    pub(crate) async fn load_connected(&self) -> Result<(Vec<Migration>, Connected)> {
        if self.config.create_database {
            return Ok((self.load()?, None));
        }
        let dir = self.config.migrations_dir.clone();
        let environment = self.config.environment.clone();
        let loading = tokio::task::spawn_blocking(move || load_dir(&dir, environment.as_deref()));
        let connecting = self.connect();
        tokio::pin!(loading, connecting);
        tokio::select! {
            loaded = &mut loading => {
                let set = joined(loaded)?;
                Ok((set, Some(connecting.await?)))
            }
            connected = &mut connecting => {
                // The files' problems come first, as when they were loaded before connecting.
                let set = joined(loading.await)?;
                Ok((set, Some(connected?)))
            }
        }
    }
}

fn joined(
    r: std::result::Result<Result<Vec<Migration>>, tokio::task::JoinError>,
) -> Result<Vec<Migration>> {
    match r {
        Ok(loaded) => loaded,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels a blocking task.
        Err(_) => Err(Error::Terminated),
    }
}

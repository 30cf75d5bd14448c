//! Loading the migration files while the migration connection is made: a run costs about the
//! slower of the two instead of their sum. The files are read a few at a time on the run's own
//! thread, yielding between them, so the connection's handshake goes on meanwhile (no thread,
//! no second allocator arena). Bad files still win: their error is returned whatever the
//! connection did, and connecting never writes (a run that may create the database loads
//! first, so bad files never leave a new database behind).

use tokio_postgres::Client;

use crate::connect::ServerInfo;
use crate::error::{Error, Result};
use crate::migrator::{Migrator, foreign_layout};
use crate::source::{self, Migration};

/// The connection [`Migrator::load_connected`] made, for the run's first attempt.
pub(crate) type Connected = Option<(Client, ServerInfo)>;

/// Files read between two yields: about half a millisecond of work for small files.
const FILES_PER_TURN: usize = 32;

impl Migrator {
    /// The migration set, and the migration connection made while it loaded (`None` when the
    /// run may create the database: then nothing connects before the files are known good).
    pub(crate) async fn load_connected(&self) -> Result<(Vec<Migration>, Connected)> {
        if self.config.create_database {
            return Ok((self.load()?, None));
        }
        let connecting = self.connect();
        tokio::pin!(connecting);
        let mut connected = None;
        look(&mut connecting, &mut connected).await;
        let mut loading = self.start_loading()?;
        loop {
            look(&mut connecting, &mut connected).await;
            if loading.read_some(FILES_PER_TURN) {
                break;
            }
        }
        // The files' problems come first, as when they were loaded before connecting.
        let set = loading.finish().map_err(Error::Source)?;
        let connection = match connected {
            Some(c) => c?,
            None => connecting.await?,
        };
        Ok((set, Some(connection)))
    }

    /// The layout check and the directory listing (the files are read by the caller).
    fn start_loading(&self) -> Result<source::Loading> {
        let dir = &self.config.migrations_dir;
        foreign_layout(dir)?;
        source::Loading::new(dir, self.config.environment.as_deref()).map_err(Error::Source)
    }
}

/// One look at the connection, unless it is made: its next handshake step when the reply is
/// in, then back to the files (a yield lets the runtime poll the socket).
async fn look<F: std::future::Future + Unpin>(
    connecting: &mut F,
    connected: &mut Option<F::Output>,
) {
    if connected.is_none() {
        tokio::select! {
            biased;
            c = connecting => *connected = Some(c),
            _ = tokio::task::yield_now() => {}
        }
    }
}

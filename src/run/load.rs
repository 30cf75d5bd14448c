//! Loading the migration files, and doing it while the migration connection is made and the
//! run's first read is in flight: a run costs about the slower of the two instead of their
//! sum. The files are read a few at a time on the run's own thread, yielding between them, so
//! the handshake and the read go on meanwhile (no thread, no second allocator arena). Bad
//! files still win: their error is returned whatever the database did.

use std::future::Future;
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::source::{Loading, Migration};

/// Files read between two yields: about half a millisecond of work for small files.
const FILES_PER_TURN: usize = 32;

/// Loading begun: the layout check and the directory listing, the files to be read by the
/// caller, a few at a time if it likes. A directory in another tool's layout is one error
/// naming the tool and the `import` command.
pub(crate) fn loading(config: &Config) -> Result<Loading> {
    let dir = &config.migrations_dir;
    foreign_layout(dir)?;
    Loading::new(dir, config.environment.as_deref()).map_err(Error::Source)
}

/// The error for a migrations directory in another tool's layout, whether its files failed to
/// load (golang-migrate, Flyway, pop), loaded as nothing (Diesel's sub-directories) or loaded
/// with another tool's markers in them (goose, dbmate).
pub(crate) fn foreign_layout(dir: &Path) -> Result<()> {
    match crate::import::probe::layout_hint(dir) {
        Some(hint) => Err(Error::ForeignLayout(hint)),
        None => Ok(()),
    }
}

/// The files `begin` starts loading, read while `connecting` goes on; then what `connecting`
/// gave. `connecting` is first polled before `begin` runs, so the connection is under way
/// while the directory is listed.
pub(super) async fn load_while<C>(
    begin: impl FnOnce() -> Result<Loading>,
    connecting: impl Future<Output = Result<C>>,
) -> Result<(Vec<Migration>, C)> {
    tokio::pin!(connecting);
    let mut connected = None;
    look(&mut connecting, &mut connected).await;
    let mut loading = begin()?;
    while !loading.read_some(FILES_PER_TURN) {
        look(&mut connecting, &mut connected).await;
    }
    // The files' problems come first, as when they were loaded before connecting.
    let set = loading.finish().map_err(Error::Source)?;
    let made = match connected {
        Some(made) => made?,
        None => connecting.await?,
    };
    Ok((set, made))
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

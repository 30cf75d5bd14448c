//! `wait --version V`, for application pods' init containers: poll the ledger, without the
//! lease, until every file up to V is applied and the ledger has reached V (exit 11 at
//! `MIGRATE_WAIT_TIMEOUT`). Survives a dropped connection and a database not created yet.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::backoff;
use crate::connect::{self, DbUrl};
use crate::error::{Error, Result};
use crate::log::events;
use crate::session::sleep_or_cancel;
use crate::source::Migration;
use crate::store::Tables;
use crate::store::ledger::{self, AppliedRow};

/// How many files up to `version` are not applied, plus one when the ledger has not reached
/// `version` at all.
pub fn missing_up_to(set: &[Migration], rows: &[AppliedRow], version: i64) -> usize {
    if version <= 0 {
        return 0;
    }
    let applied: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter(|r| !r.dirty)
        .map(|r| r.version)
        .collect();
    let files = set
        .iter()
        .filter(|m| m.version <= version && !applied.contains(&m.version))
        .count();
    let reached = applied.range(version..).next().is_some();
    files + usize::from(!reached)
}

/// Polls until `version` is reached, `timeout` passes (exit 11) or `cancel` fires.
pub async fn wait_for(
    url: &DbUrl,
    tables: &Tables,
    set: &[Migration],
    version: i64,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<()> {
    let started = Instant::now();
    let mut delays = backoff::wait_poll();
    let mut client: Option<Client> = None;
    // Unknown until the ledger is read: every file up to the version, plus the version.
    let mut missing = missing_up_to(set, &[], version);
    let mut current = 0;
    loop {
        if client.is_none() {
            let remaining = timeout.saturating_sub(started.elapsed());
            match connect::wait_and_connect(url, remaining, false).await {
                Ok((c, _)) => client = Some(c),
                // The database is not created yet (blue-green: the Job creates it).
                Err(Error::NoDatabase(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(c) = &client {
            match ledger::read(c, tables).await {
                Ok(l) => {
                    missing = missing_up_to(set, &l.rows, version);
                    current = l.current();
                    if missing == 0 {
                        tracing::info!(
                            event = events::WAIT_REACHED,
                            version,
                            current,
                            "version reached"
                        );
                        return Ok(());
                    }
                }
                // A node drained or restarted: reconnect within what is left of the wait.
                Err(e) if e.is_connection_lost() => client = None,
                Err(e) => return Err(e),
            }
        }
        if cancel.is_cancelled() {
            return Err(Error::Terminated);
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(Error::WaitTimeout {
                version,
                waited,
                missing,
            });
        }
        let delay = delays
            .next()
            .unwrap_or(Duration::from_secs(1))
            .min(timeout - waited);
        tracing::info!(
            event = events::WAIT_POLLING,
            version,
            current,
            missing,
            connected = client.is_some(),
            delay_ms = delay.as_millis() as u64,
            "waiting for the version"
        );
        sleep_or_cancel(delay, cancel).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::tests::{mig, row};

    #[test]
    fn counts_files_up_to_the_version_and_the_version_itself() {
        let set = vec![mig(1), mig(2), mig(3)];
        assert_eq!(missing_up_to(&set, &[], 2), 3, "two files plus the version");
        assert_eq!(missing_up_to(&set, &[row(1)], 2), 2);
        assert_eq!(missing_up_to(&set, &[row(1), row(2)], 2), 0);
        // A newer image applied 5: every file up to 2 is there and the ledger is past it.
        assert_eq!(missing_up_to(&set, &[row(1), row(2), row(5)], 2), 0);
        // The ledger reached a version beyond ours, but a file up to it is missing.
        assert_eq!(missing_up_to(&set, &[row(2), row(3)], 3), 1);
        assert_eq!(missing_up_to(&set, &[], 0), 0);
    }

    #[test]
    fn a_dirty_row_does_not_count_as_applied() {
        let set = vec![mig(1), mig(2)];
        let mut d = row(2);
        d.dirty = true;
        assert_eq!(missing_up_to(&set, &[row(1), d], 2), 2);
    }

    #[test]
    fn a_version_no_file_has_is_reached_through_the_ledger() {
        // The app waits for 4, which this (older) image has no file for.
        let set = vec![mig(1)];
        assert_eq!(missing_up_to(&set, &[row(1)], 4), 1);
        assert_eq!(missing_up_to(&set, &[row(1), row(4)], 4), 0);
    }
}

//! The fleet's settings: where the targets come from (`--targets`, `MIGRATE_TARGETS_FILE`,
//! `MIGRATE_TARGETS_QUERY`) and how they are scheduled (`MIGRATE_PARALLELISM`,
//! `MIGRATE_SHARDS` with `JOB_COMPLETION_INDEX`, `MIGRATE_CANARY_TARGETS`,
//! `MIGRATE_MAX_FAILURES`), each checked once, a bad value naming its variable.

use std::path::PathBuf;

use super::vars::var;
use crate::error::{Error, Result};

/// Where a fleet's targets are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSource {
    /// A file, one target per line (`--targets`, `MIGRATE_TARGETS_FILE`).
    File(PathBuf),
    /// A query run once on `DATABASE_URL`, one target per row (`MIGRATE_TARGETS_QUERY`).
    Query(String),
}

/// How a fleet of targets is read and scheduled. Without a [`TargetSource`] there is no fleet:
/// commands work on `DATABASE_URL` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSettings {
    /// Where the targets come from; `None`: one database, no fleet.
    pub targets: Option<TargetSource>,
    /// `MIGRATE_PARALLELISM` (default 4, at least 1): targets in flight in one process.
    pub parallelism: usize,
    /// `MIGRATE_SHARDS` (default 1): how many processes share the list.
    pub shards: u64,
    /// `JOB_COMPLETION_INDEX` (0-based, below `shards`): this process's share.
    pub shard: u64,
    /// `MIGRATE_CANARY_TARGETS` (default 0): the first N targets of this share run first.
    pub canary: usize,
    /// `MIGRATE_MAX_FAILURES` (default none): after this many failed targets, none starts.
    pub max_failures: Option<usize>,
}

impl Default for FleetSettings {
    fn default() -> FleetSettings {
        FleetSettings {
            targets: None,
            parallelism: 4,
            shards: 1,
            shard: 0,
            canary: 0,
            max_failures: None,
        }
    }
}

/// The raw values, as the environment and `--targets` gave them.
#[derive(Default)]
pub(super) struct RawFleet {
    pub file: Option<String>,
    pub query: Option<String>,
    pub parallelism: Option<String>,
    pub shards: Option<String>,
    pub index: Option<String>,
    pub canary: Option<String>,
    pub max_failures: Option<String>,
}

/// A whole number at least `min`.
fn at_least(min: u64) -> impl Fn(&str) -> std::result::Result<u64, String> {
    move |s| match s.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least {min}")),
    }
}

fn config(name: &str, message: impl Into<String>) -> Error {
    Error::Config {
        name: name.into(),
        message: message.into(),
    }
}

impl RawFleet {
    /// Checks every value, in the order of the struct's fields.
    pub fn validate(self) -> Result<FleetSettings> {
        let targets = match (self.file, self.query) {
            (Some(_), Some(_)) => {
                return Err(config(
                    "MIGRATE_TARGETS_FILE and MIGRATE_TARGETS_QUERY",
                    "give the targets one way: a file (--targets, MIGRATE_TARGETS_FILE) or a \
                     query (MIGRATE_TARGETS_QUERY), not both",
                ));
            }
            (Some(f), None) => Some(TargetSource::File(PathBuf::from(f))),
            (None, Some(q)) if q.trim().is_empty() => None,
            (None, Some(q)) => Some(TargetSource::Query(q)),
            (None, None) => None,
        };
        let parallelism = var("MIGRATE_PARALLELISM", self.parallelism, at_least(1))?;
        let shards = var("MIGRATE_SHARDS", self.shards, at_least(1))?.unwrap_or(1);
        let index = var("JOB_COMPLETION_INDEX", self.index, at_least(0))?;
        let shard = match index {
            _ if shards == 1 => 0,
            None => {
                return Err(config(
                    "JOB_COMPLETION_INDEX",
                    format!(
                        "required when MIGRATE_SHARDS is {shards} (an Indexed Job sets it on \
                         each pod)"
                    ),
                ));
            }
            Some(i) if i >= shards => {
                return Err(config(
                    "JOB_COMPLETION_INDEX",
                    format!("{i} is not below MIGRATE_SHARDS ({shards})"),
                ));
            }
            Some(i) => i,
        };
        let canary = var("MIGRATE_CANARY_TARGETS", self.canary, at_least(0))?.unwrap_or(0);
        let max_failures = var("MIGRATE_MAX_FAILURES", self.max_failures, at_least(1))?;
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Ok(FleetSettings {
            targets,
            parallelism: parallelism.map_or(4, size),
            shards,
            shard,
            canary: size(canary),
            max_failures: max_failures.map(size),
        })
    }
}

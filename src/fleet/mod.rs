//! A fleet is many runs: one process migrates a list of targets (databases, or schemas of one
//! database), each target an ordinary [`Run`] with its own connections, ledger, lease, stop
//! handle and report. The targets come from a file or a query (`targets`); this process keeps
//! its shard's share (`shard`); the scheduler starts runs with bounded parallelism, a canary
//! wave and a failure budget (`schedule`); their outcomes fold into counts, the failed targets
//! and the exit code (`summary`); `events` logs the fleet's start, progress and end. The
//! migration files are loaded once and shared by every run.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::config::{Config, TargetSource};
use crate::connect::{self, DbUrl};
use crate::error::{Error, Result};
use crate::plan::Goal;
use crate::report::Outcome;
use crate::run::{Pool, Run, Stop};
use crate::source::Migration;

mod events;
mod listing;
mod schedule;
mod shard;
mod summary;
mod targets;

use schedule::{Limits, Running, Scheduled};
pub use summary::{FailedTarget, Summary, Verdict, worst};
pub use targets::Target;
use targets::{Origin, Template};

/// Many targets migrated (or rolled back) by one process: built with [`Fleet::new`] from the
/// settings (`config.fleet`), taken with [`Fleet::run`].
pub struct Fleet {
    config: Config,
    goal: Goal,
    targets: Vec<Target>,
    listed: usize,
    stop: Stop,
    running: Running,
}

/// How a fleet ended: the summary, and the error whose exit code is the fleet's.
#[derive(Debug)]
pub struct FleetOutcome {
    /// Counts by outcome and the failed targets.
    pub summary: Summary,
    /// `Err` when a target failed (or a signal stopped the fleet); see [`Summary`].
    pub result: Result<()>,
}

impl Fleet {
    /// Reads the targets (`config.fleet.targets`: a file, or a query run on `DATABASE_URL`)
    /// and keeps this process's shard of them. Nothing is changed in any database; a bad line,
    /// a duplicate or a bad setting is an error (exit 20) naming where it is. `stop` stops the
    /// fleet (`Stop::default()` when nothing will).
    pub async fn new(config: Config, goal: Goal, stop: Stop) -> Result<Fleet> {
        let template = Template::new(config.database_url())?;
        let all = match &config.fleet.targets {
            None => {
                return Err(Error::Config {
                    name: "MIGRATE_TARGETS_FILE".into(),
                    message: "a fleet needs targets: --targets FILE, MIGRATE_TARGETS_FILE or \
                              MIGRATE_TARGETS_QUERY"
                        .into(),
                });
            }
            Some(TargetSource::File(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
                    name: "MIGRATE_TARGETS_FILE".into(),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                let source = path.display().to_string();
                let origin = Origin {
                    source: &source,
                    unit: "line",
                };
                targets::parse(targets::lines(&text), &origin, &template)?
            }
            Some(TargetSource::Query(sql)) => {
                let rows = stop
                    .or_abandoned(query_rows(&config, &template, sql))
                    .await?;
                let origin = Origin {
                    source: "MIGRATE_TARGETS_QUERY",
                    unit: "row",
                };
                targets::parse(rows, &origin, &template)?
            }
        };
        let listed = all.len();
        let (shards, index) = (config.fleet.shards, config.fleet.shard);
        let targets = all
            .into_iter()
            .filter(|t| shard::of(t.name(), shards) == index)
            .collect();
        Ok(Fleet {
            config,
            goal,
            targets,
            listed,
            stop,
            running: Running::default(),
        })
    }

    /// The fleet's settings (each target's run has them with its own URL).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This process's targets, in list order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The settings of `target`'s run: the fleet's, with the target's URL.
    pub fn config_of(&self, target: &Target) -> Config {
        self.config.with_database_url(target.url().to_string())
    }

    /// The handle that stops the fleet: cancel starts no new target and cancels each running
    /// run; abandon abandons them (each cleans up as a single run does).
    pub fn stop(&self) -> Stop {
        self.stop.clone()
    }

    /// Whether a running target is inside a migration step (the signal grace applies).
    pub fn is_working(&self) -> bool {
        self.running.is_working()
    }

    /// Loads the migration files once, then runs every target of this shard as scheduled;
    /// returns the summary and the fleet's result. Bad files fail the fleet before any target
    /// starts.
    pub async fn run(self) -> FleetOutcome {
        let started = Instant::now();
        let set = match crate::run::loading(&self.config)
            .and_then(|l| l.finish().map_err(Error::Source))
        {
            Ok(set) => Arc::new(set),
            Err(e) => {
                return FleetOutcome {
                    summary: Summary {
                        total: self.targets.len(),
                        not_started: self.targets.len(),
                        ..Summary::default()
                    },
                    result: Err(e),
                };
            }
        };
        let limits = Limits {
            parallelism: self.config.fleet.parallelism,
            canary: self.config.fleet.canary,
            max_failures: self.config.fleet.max_failures,
            progress: self.config.progress_interval,
        };
        events::started(&self.config.fleet, self.targets.len(), self.listed);
        let mut work = Work {
            fleet: &self,
            set,
            pool: Pool::new(limits.parallelism),
            summary: Summary {
                total: self.targets.len(),
                ..Summary::default()
            },
            worst: summary::Worst::default(),
        };
        let started_n = schedule::schedule(
            self.targets.len(),
            limits,
            &self.stop,
            &self.running,
            &mut work,
        )
        .await;
        let Work {
            mut summary, worst, ..
        } = work;
        summary.not_started += self.targets.len() - started_n;
        let result = summary.result(worst, self.stop.is_cancelled());
        events::finished(&summary, &result, started);
        FleetOutcome { summary, result }
    }
}

/// The scheduler's side of a fleet run: starting a target's run, folding its outcome.
struct Work<'f> {
    fleet: &'f Fleet,
    set: Arc<Vec<Migration>>,
    /// Connections schema targets hand to the next (closed when the fleet ends).
    pool: Pool,
    summary: Summary,
    worst: summary::Worst,
}

impl Scheduled for Work<'_> {
    fn start(&mut self, index: usize) -> (Stop, impl Future<Output = Outcome> + 'static) {
        let target = &self.fleet.targets[index];
        let config = self.fleet.config_of(target);
        let run = Run::with_set(config, self.fleet.goal, self.set.clone())
            .reusing(&self.pool, target.name());
        let span = tracing::error_span!("target", target = %target.name());
        (run.stop(), run.run().instrument(span))
    }

    fn done(&mut self, index: usize, outcome: Outcome) -> bool {
        let name = self.fleet.targets[index].name();
        let applied = outcome.report.count();
        let verdict = self.summary.fold(&mut self.worst, index, name, outcome);
        events::target_finished(name, &verdict, applied);
        matches!(verdict, Verdict::Failed(..))
    }

    fn tick(&mut self) {
        events::progress(&self.summary);
    }
}

/// The rows of the targets query, run once on `DATABASE_URL` with `{target}` taken out: the
/// first column as text, numbered from 1; a NULL or empty one is refused naming its row.
async fn query_rows(
    config: &Config,
    template: &Template,
    sql: &str,
) -> Result<Vec<(usize, String)>> {
    let url = DbUrl::parse(&template.without_placeholder()?)?;
    let (client, _) = connect::wait_and_connect(&url, config.wait_timeout, false).await?;
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| Error::db("running MIGRATE_TARGETS_QUERY", e))?;
    let mut rows = Vec::new();
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            let n = rows.len() + 1;
            match row.try_get(0).ok().flatten().map(str::trim) {
                Some(v) if !v.is_empty() => rows.push((n, v.to_string())),
                _ => {
                    return Err(Error::Config {
                        name: format!("MIGRATE_TARGETS_QUERY row {n}"),
                        message: "the first column is NULL or empty: every row must name a \
                                  target"
                            .into(),
                    });
                }
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;

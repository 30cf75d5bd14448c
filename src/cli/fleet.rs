//! The commands over a fleet of targets (`--targets`, `MIGRATE_TARGETS_FILE`,
//! `MIGRATE_TARGETS_QUERY`): `migrate` and `rollback` run every target of this shard through
//! the library's `Fleet`; `status` and `plan` print one entry per target, in list order.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tracing::Instrument;

use crdb_migrate::fleet::Target;
use crdb_migrate::{Config, Error, Fleet, Goal, Migrator, Report, Stop};

use super::args::Command;
use super::commands::{migrate_goal, parse_version, rollback_goal};
use super::render;
use super::signals::with_signals_on;
use super::termination::{finish, finish_fleet};

/// Runs `command` over the fleet `config` names, under the signal handlers; ends the process
/// as a fleet does (the exit code rule and the termination message with the targets).
pub(crate) fn run(
    runtime: tokio::runtime::Runtime,
    config: Config,
    grace: Duration,
    command: Command,
    started: Instant,
    termination: Option<&Path>,
) -> ExitCode {
    let end = |result: Result<(), Error>| finish(result, &Report::default(), started, termination);
    if !command.takes_targets() {
        return end(Err(Error::Config {
            name: "MIGRATE_TARGETS_FILE".into(),
            message: "this command works on one database (DATABASE_URL): unset \
                      MIGRATE_TARGETS_FILE and MIGRATE_TARGETS_QUERY for it"
                .into(),
        }));
    }
    let goal = match &command {
        Command::Migrate { target, .. } => migrate_goal(&config, target.clone()),
        Command::Rollback {
            count,
            target,
            to_image,
            ..
        } => rollback_goal(*count, target.clone(), *to_image),
        _ => Ok(Goal::Up(config.target_version)),
    };
    let goal = match goal {
        Ok(goal) => goal,
        Err(e) => return end(Err(e)),
    };
    let stop = Stop::default();
    // Targets may be inside a migration whenever the fleet runs: the grace always applies (a
    // run that is only waiting stops at once on the cancel anyway).
    let work = async {
        let fleet = Fleet::new(config, goal, stop.clone()).await?;
        match command {
            // Reads only: abandoned at once past the grace, nothing to clean up.
            Command::Status { json, .. } => {
                Ok(Ended::Listed(stop.or_abandoned(status(&fleet, json)).await))
            }
            Command::Plan { json, target, .. } => {
                let target = target.map(|t| parse_version("--target", &t)).transpose()?;
                let planned = stop.or_abandoned(plan(&fleet, target, json)).await;
                Ok(Ended::Listed(planned))
            }
            _ => Ok(Ended::Ran(Box::new(fleet.run().await))),
        }
    };
    let ended = runtime.block_on(with_signals_on(&stop, || true, grace, work));
    match ended.and_then(|r| r) {
        Ok(Ended::Ran(outcome)) => finish_fleet(*outcome, started, termination),
        Ok(Ended::Listed(result)) => end(result),
        Err(e) => end(Err(e)),
    }
}

/// A `DATABASE_URL` holding `{target}` without targets to put there would connect to a
/// database literally named so: refused (exit 20) naming both.
pub(crate) fn placeholder_without_targets(config: &Config) -> Option<Error> {
    let url = config.database_url()?.to_ascii_lowercase();
    let holds = url.contains("{target}") || url.contains("%7btarget%7d");
    (holds && config.fleet.targets.is_none()).then(|| Error::Config {
        name: "DATABASE_URL".into(),
        message: "holds {target} but no targets are given: use --targets FILE, \
                  MIGRATE_TARGETS_FILE or MIGRATE_TARGETS_QUERY"
            .into(),
    })
}

/// How a fleet command ended.
enum Ended {
    /// `migrate` or `rollback`: the fleet's outcome.
    Ran(Box<crdb_migrate::FleetOutcome>),
    /// `status` or `plan`: printed; the result of the worst target.
    Listed(Result<(), Error>),
}

/// `op` on every target with its own settings, at most `MIGRATE_PARALLELISM` at a time, each
/// in the target's span; the results in list order, as they come.
fn each<'f, T, F>(
    fleet: &'f Fleet,
    op: impl Fn(Config) -> F + 'f,
) -> impl futures_util::Stream<Item = (&'f Target, Result<T, Error>)> + 'f
where
    F: Future<Output = Result<T, Error>> + 'f,
    T: 'f,
{
    let parallelism = fleet.config().fleet.parallelism;
    futures_util::stream::iter(fleet.targets())
        .map(move |t| {
            let span = tracing::error_span!("target", target = %t.name());
            let work = op(fleet.config_of(t)).instrument(span);
            async move { (t, work.await) }
        })
        .buffered(parallelism)
}

/// `status --targets`: one line per target (`target  version  state  pending dirty`), or with
/// `--json` one array of the single-target objects, each with `target` (the library's
/// `Fleet::statuses`: files loaded once, schema targets' connections reused).
async fn status(fleet: &Fleet, json: bool) -> Result<(), Error> {
    let mut results = Vec::new();
    let mut array = Vec::new();
    let mut lines = fleet.statuses();
    while let Some((t, r)) = lines.next().await {
        if json {
            array.push(render::target_status_json(t.name(), &r));
        } else {
            println!("{}", render::target_status_line(t.name(), &r));
        }
        results.push(r.map(|_| ()));
    }
    if json {
        let out = serde_json::Value::Array(array);
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    crdb_migrate::fleet::worst(results)
}

/// `plan --targets`: each target's plan (text under a `# target` header, or one JSON array of
/// the single-target objects, each with `target`). The files are loaded once.
async fn plan(fleet: &Fleet, target: Option<i64>, json: bool) -> Result<(), Error> {
    let set = Migrator::new(fleet.config().clone()).load()?;
    let warnings = Migrator::lint(&set);
    let (set, warnings) = (&set, &warnings);
    let mut results = Vec::new();
    let mut array = Vec::new();
    let mut plans = each(fleet, |c| async move {
        let m = Migrator::new(c);
        m.plan(set, target).await.map(|p| {
            if json {
                render::plan_json(&p, warnings)
            } else {
                serde_json::Value::String(render::plan_text(&p, warnings))
            }
        })
    });
    while let Some((t, r)) = plans.next().await {
        match (&r, json) {
            (Ok(serde_json::Value::Object(p)), true) => {
                let mut p = p.clone();
                p.insert("target".into(), t.name().into());
                array.push(serde_json::Value::Object(p));
            }
            (Ok(serde_json::Value::String(text)), false) => print!("# target {}\n{text}", t.name()),
            (Err(e), true) => array.push(render::target_error_json(t.name(), e)),
            (Err(e), false) => println!("# target {}\nerror: {e}", t.name()),
            _ => {}
        }
        results.push(r.map(|_| ()));
    }
    if json {
        let out = serde_json::Value::Array(array);
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    crdb_migrate::fleet::worst(results)
}

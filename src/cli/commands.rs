//! Each command run against the library, printing its product on stdout.

use crdb_migrate::import::Tool;
use crdb_migrate::{
    Baseline, Config, Error, Goal, Migrator, Outcome, Repair, Report, Warning, events,
};

use super::args::Command;
use super::render;

pub(crate) fn parse_version(name: &str, v: &str) -> Result<i64, Error> {
    crdb_migrate::parse_version(v).map_err(|message| Error::Config {
        name: name.into(),
        message,
    })
}

/// Runs `command` and says how it ended: `migrate` and `rollback` are a run, whose outcome is
/// its report; any other command reports the database's current version when it learnt it.
/// Every command stops when [`crdb_migrate::Stop::abandon`] is called.
pub(crate) async fn run(migrator: &Migrator, command: Command) -> Outcome {
    let goal = match command {
        Command::Migrate { target, .. } => migrate_goal(migrator.config(), target),
        Command::Rollback {
            count,
            target,
            to_image,
            ..
        } => rollback_goal(count, target, to_image),
        other => {
            let stop = migrator.stop();
            // Boxed, as a run's steps are: the future awaiting it stays small.
            let result = stop
                .or_abandoned(Box::pin(other_command(migrator, other)))
                .await;
            return match result {
                Ok(current) => Outcome {
                    report: Report {
                        current,
                        ..Report::default()
                    },
                    result: Ok(()),
                },
                Err(e) => Outcome::failed(e),
            };
        }
    };
    match goal {
        Ok(goal) => migrator.new_run(goal).run().await,
        Err(e) => Outcome::failed(e),
    }
}

/// `migrate [--target V]`: up to V, else to `MIGRATE_TARGET_VERSION`, else to the newest file.
pub(crate) fn migrate_goal(config: &Config, target: Option<String>) -> Result<Goal, Error> {
    let target = target.map(|t| parse_version("--target", &t)).transpose()?;
    Ok(Goal::Up(target.or(config.target_version)))
}

/// `rollback [--count N | --target V | --to-image]`: the newest one when none is given.
pub(crate) fn rollback_goal(
    count: Option<usize>,
    target: Option<String>,
    to_image: bool,
) -> Result<Goal, Error> {
    if to_image {
        return Ok(Goal::ToImage);
    }
    Ok(match (count, target) {
        (_, Some(t)) => Goal::Down(parse_version("--target", &t)?),
        (Some(n), None) => Goal::DownBy(n),
        (None, None) => Goal::DownBy(1),
    })
}

/// Runs a command other than `migrate` and `rollback`; returns the database's current version
/// when the command learnt it.
async fn other_command(migrator: &Migrator, command: Command) -> Result<Option<i64>, Error> {
    match command {
        // Runs: `run` takes them, with their report.
        Command::Migrate { .. } | Command::Rollback { .. } => Ok(None),
        Command::Status { json, .. } => status(migrator, json).await,
        Command::Schema { json } => schema(migrator, json).await,
        Command::Test { json, force } => test_undos(migrator, json, force).await,
        Command::Create {
            description,
            up,
            undo,
        } => {
            create(migrator, &description, up.as_deref(), undo.as_deref())?;
            Ok(None)
        }
        Command::Verify { strict } => verify(migrator, strict),
        Command::Plan { json, target, .. } => {
            let target = target.map(|t| parse_version("--target", &t)).transpose()?;
            plan(migrator, target, json).await
        }
        Command::Wait { version } => {
            let v = parse_version("--version", &version)?;
            migrator.wait_for(v).await?;
            Ok(Some(v))
        }
        Command::Repair {
            version,
            mark_applied,
            mark_not_applied,
            accept_checksum,
        } => {
            let v = parse_version("--version", &version)?;
            let action = repair_action(mark_applied, mark_not_applied, accept_checksum)?;
            migrator.repair(v, action).await.map(|_| None)
        }
        Command::Import {
            from,
            src,
            into,
            dialect,
        } => {
            let tool = tool(&from)?;
            for imported in migrator.import(tool, &src, into.as_deref(), dialect.as_deref())? {
                println!("{imported}");
            }
            Ok(None)
        }
        Command::Baseline { version, from } => baseline(migrator, version, from).await,
        Command::Unlock { force } => {
            let info = migrator.unlock(force).await?;
            println!("{}", render::lease_text(info.as_ref(), force));
            Ok(None)
        }
    }
}

/// `status [--json]`: prints the status and learns the current version.
async fn status(migrator: &Migrator, json: bool) -> Result<Option<i64>, Error> {
    let s = migrator.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    } else {
        print!("{}", render::status_text(&s));
    }
    Ok(Some(s.current_version))
}

/// `schema [--json]`: prints the live schema's canonical text (or JSON).
async fn schema(migrator: &Migrator, json: bool) -> Result<Option<i64>, Error> {
    let snapshot = migrator.schema().await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot.json()).unwrap_or_default()
        );
    } else {
        print!("{}", snapshot.text());
    }
    Ok(None)
}

/// `test [--json] [--force]`: prints every migration's undo verdict; fails when one failed.
async fn test_undos(migrator: &Migrator, json: bool, force: bool) -> Result<Option<i64>, Error> {
    let report = migrator.test_undos_report(force).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json()).unwrap_or_default()
        );
    } else {
        print!("{}", report.text());
    }
    match report.failed() {
        0 => Ok(None),
        failed => Err(Error::UndoTest {
            failed,
            checked: report.migrations.len(),
        }),
    }
}

/// `verify [--strict]`: prints the set and its warnings; `--strict` fails on a risk.
fn verify(migrator: &Migrator, strict: bool) -> Result<Option<i64>, Error> {
    let (set, warnings) = migrator.verify()?;
    print!("{}", render::verify_text(&set, &warnings));
    if strict && warnings.iter().any(Warning::is_risk) {
        return Err(Error::StrictVerify);
    }
    Ok(None)
}

/// `plan [--target V] [--json]`: prints what `migrate` would do, with the files' warnings.
async fn plan(migrator: &Migrator, target: Option<i64>, json: bool) -> Result<Option<i64>, Error> {
    let set = migrator.load()?;
    let plan = migrator.plan(&set, target).await?;
    let warnings = Migrator::lint(&set);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::plan_json(&plan, &warnings)).unwrap_or_default()
        );
    } else {
        print!("{}", render::plan_text(&plan, &warnings));
    }
    Ok(Some(plan.current))
}

/// `baseline --version V | --from TOOL`: returns the newest version recorded (0: none).
async fn baseline(
    migrator: &Migrator,
    version: Option<String>,
    from: Option<String>,
) -> Result<Option<i64>, Error> {
    let how = match (version, from) {
        (Some(v), _) => Baseline::Version(parse_version("--version", &v)?),
        (None, Some(t)) => Baseline::From(tool(&t)?),
        (None, None) => {
            return Err(Error::Config {
                name: "baseline".into(),
                message: "give --version V or --from TOOL".into(),
            });
        }
    };
    let recorded = migrator.baseline(how).await?;
    Ok(Some(recorded.last().copied().unwrap_or(0)))
}

fn create(
    migrator: &Migrator,
    description: &str,
    up: Option<&str>,
    undo: Option<&str>,
) -> Result<(), Error> {
    let path = migrator.create(description, up, undo)?;
    if up.is_none() || undo.is_none() {
        tracing::warn!(
            event = events::CREATE_PLACEHOLDER,
            file = %path.display(),
            "the file holds a placeholder and will not load until it is edited: write \
             the forward SQL and the undo SQL (or remove the `-- @UNDO` line to make \
             the migration irreversible)"
        );
    }
    println!("{}", path.display());
    Ok(())
}

fn repair_action(
    mark_applied: bool,
    mark_not_applied: bool,
    accept_checksum: bool,
) -> Result<Repair, Error> {
    match (mark_applied, mark_not_applied, accept_checksum) {
        (true, _, _) => Ok(Repair::MarkApplied),
        (_, true, _) => Ok(Repair::MarkNotApplied),
        (_, _, true) => Ok(Repair::AcceptChecksum),
        _ => Err(Error::Config {
            name: "repair".into(),
            message: "give one of --mark-applied, --mark-not-applied, --accept-checksum".into(),
        }),
    }
}

fn tool(name: &str) -> Result<Tool, Error> {
    name.parse::<Tool>().map_err(|_| Error::Config {
        name: "--from".into(),
        message: format!(
            "{name:?} is not a known tool: use one of golang-migrate, sqlx, goose, dbmate, flyway, diesel, pop"
        ),
    })
}

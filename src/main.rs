//! The `crdb-migrate` binary: parses the command line, runs one operation of the library,
//! handles SIGTERM/SIGINT, writes the termination message and maps the outcome to the exit
//! code of SPEC §6. The only place that knows exit codes are process exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crdb_migrate::config::{Config, Overrides};
use crdb_migrate::error::Error;
use crdb_migrate::exit::Exit;
use crdb_migrate::log::{self, Sink, events};
use crdb_migrate::migrator::{Migrator, Repair, Report};
use crdb_migrate::plan::Rollback;

/// Applies SQL schema migrations to CockroachDB (and PostgreSQL) from inside Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "crdb-migrate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    global: Global,
}

/// Options every command takes; each overrides the environment variable named in its help.
#[derive(Args, Debug)]
struct Global {
    /// postgresql://user[:password]@host[:port]/db?sslmode=... [env: DATABASE_URL]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Directory of migration files [env: MIGRATIONS_DIR] [default: ./migrations]
    #[arg(long, global = true)]
    migrations_dir: Option<PathBuf>,
    /// Merge MIGRATIONS_DIR/<ENVIRONMENT>/ into the set [env: ENVIRONMENT]
    #[arg(long, global = true)]
    environment: Option<String>,
    /// Ledger table name [env: MIGRATE_TABLE] [default: _migrations]
    #[arg(long, global = true)]
    table: Option<String>,
    /// How long to wait for the database [env: MIGRATE_WAIT_TIMEOUT] [default: 300s]
    #[arg(long, global = true)]
    wait_timeout: Option<String>,
    /// Lease time to live [env: MIGRATE_LEASE_TTL] [default: 30s]
    #[arg(long, global = true)]
    lease_ttl: Option<String>,
    /// How long to wait for the lease [env: MIGRATE_LEASE_TIMEOUT] [default: 600s]
    #[arg(long, global = true)]
    lease_timeout: Option<String>,
    /// Our name in the lease [env: MIGRATE_HOLDER, else POD_NAME, else host-pid]
    #[arg(long, global = true)]
    holder: Option<String>,
    /// json or text [env: LOG_FORMAT] [default: json]
    #[arg(long, global = true)]
    log_format: Option<String>,
    /// Log filter, e.g. info or debug [env: LOG_LEVEL or RUST_LOG] [default: info]
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply pending migrations up to the target (the default command).
    Migrate {
        /// Stop at this version [env: MIGRATE_TARGET_VERSION] [default: the newest file]
        #[arg(long)]
        target: Option<String>,
    },
    /// Undo the newest migration, the newest N, or every one above a version.
    Rollback {
        /// Undo the newest N applied migrations.
        #[arg(long, conflicts_with = "target")]
        count: Option<usize>,
        /// Undo every applied migration above this version (0: all).
        #[arg(long)]
        target: Option<String>,
    },
    /// Show applied, pending, dirty and unknown migrations and the lease.
    Status {
        /// Print the stable JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Write a new migration file and print its path (no database needed).
    Create {
        /// What the migration does, e.g. "add users email".
        description: String,
        /// Forward SQL to write into the file.
        #[arg(long)]
        up: Option<String>,
        /// Undo SQL to write after `-- @UNDO`.
        #[arg(long)]
        undo: Option<String>,
    },
    /// Check the migration files offline (no database needed).
    Verify,
    /// Show what migrate would do, without doing it.
    Plan {
        /// Plan up to this version [env: MIGRATE_TARGET_VERSION]
        #[arg(long)]
        target: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait, without the lease, until every migration up to VERSION is applied.
    Wait {
        /// The version to wait for.
        #[arg(long)]
        version: String,
    },
    /// Resolve a dirty mark or accept an edited file, under the lease.
    Repair {
        /// The migration's version.
        #[arg(long)]
        version: String,
        /// The change is in place: record it as applied.
        #[arg(long, group = "action")]
        mark_applied: bool,
        /// Nothing of it remains: remove its row.
        #[arg(long, group = "action")]
        mark_not_applied: bool,
        /// The file was edited on purpose: record its new checksum.
        #[arg(long, group = "action")]
        accept_checksum: bool,
    },
    /// Show the lease; with --force, release it.
    Unlock {
        /// Release the lease whoever holds it.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => {
                    log::init(crdb_migrate::config::LogFormat::Json, "info", Sink::Stdout);
                    let usage = Error::Config {
                        name: "command line".into(),
                        message: e.kind().to_string(),
                    };
                    finish(
                        Err(usage),
                        &Report::default(),
                        started,
                        env_termination_log().as_deref(),
                    )
                }
            };
        }
    };
    let command = cli.command.unwrap_or(Command::Migrate { target: None });
    let target = match &command {
        Command::Migrate { target } | Command::Plan { target, .. } => target.clone(),
        _ => None,
    };
    let g = cli.global;
    let overrides = Overrides {
        database_url: g.database_url,
        migrations_dir: g.migrations_dir,
        environment: g.environment,
        target_version: target,
        table: g.table,
        wait_timeout: g.wait_timeout,
        lease_ttl: g.lease_ttl,
        lease_timeout: g.lease_timeout,
        holder: g.holder,
        log_format: g.log_format,
        log_level: g.log_level,
    };
    let sink = match command {
        Command::Status { .. }
        | Command::Plan { .. }
        | Command::Verify
        | Command::Create { .. }
        | Command::Unlock { .. } => Sink::Stderr,
        _ => Sink::Stdout,
    };
    let config = match Config::from_env(overrides) {
        Ok(c) => c,
        Err(e) => {
            log::init(crdb_migrate::config::LogFormat::Json, "info", sink);
            let termination = env_termination_log();
            return finish(Err(e), &Report::default(), started, termination.as_deref());
        }
    };
    log::init(config.log_format, &config.log_level, sink);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::BadInput.code());
        }
    };
    let termination = config.termination_log.clone();
    let migrator = Migrator::new(config);
    let mut report = Report::default();
    let result = runtime.block_on(with_signals(&migrator, command, &mut report));
    finish(result, &report, started, termination.as_deref())
}

/// The termination-message path straight from the environment, for exits that happen before
/// the configuration is valid (as `Config` would read it).
fn env_termination_log() -> Option<PathBuf> {
    std::env::var_os("MIGRATE_TERMINATION_LOG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let default = PathBuf::from("/dev/termination-log");
            default.exists().then_some(default)
        })
}

/// Runs the command; on SIGTERM/SIGINT asks it to start nothing new, gives the in-flight
/// migration the grace budget to finish, then abandons it (the server rolls it back when the
/// connection closes) and releases the lease.
async fn with_signals(
    migrator: &Migrator,
    command: Command,
    report: &mut Report,
) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            return Err(Error::Config {
                name: "signals".into(),
                message: "cannot install SIGTERM/SIGINT handlers".into(),
            });
        }
    };
    let mut work = Box::pin(run(migrator, command, report));
    let interrupted = tokio::select! {
        r = &mut work => return r,
        _ = term.recv() => true,
        _ = int.recv() => true,
    };
    debug_assert!(interrupted);
    // A migration step in flight gets the grace budget; anything else (waiting for the
    // database, the lease or a version) stops at once.
    let working = migrator.is_working();
    let grace = if working {
        migrator.config().shutdown_grace
    } else {
        Duration::from_millis(500).min(migrator.config().shutdown_grace)
    };
    tracing::warn!(
        event = events::RUN_SIGNAL,
        grace_ms = grace.as_millis() as u64,
        working,
        "signal received: starting nothing new{}",
        if working {
            ", letting the current migration finish"
        } else {
            ""
        }
    );
    migrator.stop_flag().store(true, Ordering::SeqCst);
    let finished = tokio::select! {
        r = &mut work => Some(r),
        _ = tokio::time::sleep(grace) => None,
        // A second signal: the operator wants out now.
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    match finished {
        // Everything asked for was done within the grace: the database is at the target.
        Some(r) => r,
        None => {
            drop(work);
            tracing::warn!(
                event = events::RUN_SIGNAL,
                working,
                "stopping now{}",
                if working {
                    ": the current migration is cancelled and rolls back"
                } else {
                    ""
                }
            );
            migrator.release_abandoned().await;
            Err(Error::Terminated)
        }
    }
}

fn parse_version(name: &str, v: &str) -> Result<i64, Error> {
    crdb_migrate::config::parse_version(v).map_err(|message| Error::Config {
        name: name.into(),
        message,
    })
}

async fn run(migrator: &Migrator, command: Command, report: &mut Report) -> Result<(), Error> {
    match command {
        Command::Migrate { .. } => migrator.migrate_into(None, report).await,
        Command::Rollback { count, target } => {
            let how = match (count, target) {
                (_, Some(t)) => Rollback::Target(parse_version("--target", &t)?),
                (Some(n), None) => Rollback::Count(n),
                (None, None) => Rollback::Count(1),
            };
            migrator.rollback_into(how, report).await
        }
        Command::Status { json } => {
            let s = migrator.status().await?;
            report.current = Some(s.current_version);
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", crdb_migrate::report::status_text(&s));
            }
            Ok(())
        }
        Command::Create {
            description,
            up,
            undo,
        } => {
            let path = migrator.create(&description, up.as_deref(), undo.as_deref())?;
            if up.is_none() || undo.is_none() {
                tracing::warn!(
                    event = "create.placeholder",
                    file = %path.display(),
                    "the file holds a placeholder and will not load until it is edited: write \
                     the forward SQL and the undo SQL (or remove the `-- @UNDO` line to make \
                     the migration irreversible)"
                );
            }
            println!("{}", path.display());
            Ok(())
        }
        Command::Verify => {
            let (set, warnings) = migrator.verify()?;
            print!("{}", crdb_migrate::report::verify_text(&set, &warnings));
            Ok(())
        }
        Command::Plan { json, .. } => {
            let set = migrator.load()?;
            let plan = migrator.plan_with(&set, None, None).await?;
            report.current = Some(plan.current);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crdb_migrate::report::plan_json(&plan))
                        .unwrap_or_default()
                );
            } else {
                print!("{}", crdb_migrate::report::plan_text(&plan));
            }
            Ok(())
        }
        Command::Wait { version } => {
            let v = parse_version("--version", &version)?;
            migrator.wait_for(v).await?;
            report.current = Some(v);
            Ok(())
        }
        Command::Repair {
            version,
            mark_applied,
            mark_not_applied,
            accept_checksum,
        } => {
            let v = parse_version("--version", &version)?;
            let action = match (mark_applied, mark_not_applied, accept_checksum) {
                (true, _, _) => Repair::MarkApplied,
                (_, true, _) => Repair::MarkNotApplied,
                (_, _, true) => Repair::AcceptChecksum,
                _ => {
                    return Err(Error::Config {
                        name: "repair".into(),
                        message:
                            "give one of --mark-applied, --mark-not-applied, --accept-checksum"
                                .into(),
                    });
                }
            };
            migrator.repair(v, action).await
        }
        Command::Unlock { force } => {
            let info = migrator.unlock(force).await?;
            println!("{}", crdb_migrate::report::lease_text(info.as_ref(), force));
            Ok(())
        }
    }
}

/// Logs `run.finished`, prints the error, writes the termination message, picks the exit code.
fn finish(
    result: Result<(), Error>,
    report: &Report,
    started: Instant,
    termination: Option<&std::path::Path>,
) -> ExitCode {
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(e) => e.exit(),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let error = result.as_ref().err().map(|e| e.to_string());
    match &error {
        None => tracing::info!(
            event = events::RUN_FINISHED,
            exit_code = exit.code(),
            reason = exit.name(),
            applied = report.count(),
            version = report.current,
            duration_ms,
            "run finished"
        ),
        Some(e) => {
            tracing::error!(
                event = events::RUN_FINISHED,
                exit_code = exit.code(),
                reason = exit.name(),
                applied = report.count(),
                version = report.current,
                duration_ms,
                error = %e,
                "run failed"
            );
            eprintln!("error: {e}");
        }
    }
    if let Some(path) = termination {
        let message = serde_json::json!({
            "exit_code": exit.code(),
            "reason": exit.name(),
            "version": report.current,
            "applied": report.count(),
            "duration_ms": duration_ms,
            "error": error,
        });
        let _ = std::fs::write(path, format!("{message}\n"));
    }
    ExitCode::from(exit.code())
}

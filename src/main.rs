//! The `crdb-migrate` binary: parses the command line, runs one operation of the library,
//! handles SIGTERM/SIGINT, writes the termination message and maps the outcome to the exit
//! code (the table in `exit.rs`; docs/commands.md, "Exit codes"). What only the binary needs
//! lives beside it in `cli/`: the clap definitions (`args`), the binary's own settings
//! (`settings`), each command (`commands`), rendering (`render`), log setup (`logging`), signals
//! (`signals`) and the end of a run (`termination`).

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use cli::args::{Cli, Command};
use cli::logging::{self, Sink};
use cli::settings::{LogFormat, Settings};
use cli::termination::{env_termination_log, finish};
use crdb_migrate::{Config, Error, Migrator, Report};

fn main() -> ExitCode {
    let started = Instant::now();
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return bad_command_line(e, started),
    };
    let mut command = cli.command.unwrap_or(Command::Migrate {
        target: None,
        targets: None,
    });
    let sink = sink_of(&command);
    let logs = cli.global.log_options();
    let targets = command.take_targets();
    let validated = Config::from_env(cli.global.overrides(targets))
        .and_then(|c| Settings::from_env(logs).map(|s| (c, s)));
    let (config, settings) = match validated {
        Ok(both) => both,
        Err(e) => {
            logging::init(LogFormat::Auto, "info", sink);
            let termination = env_termination_log();
            return finish(Err(e), &Report::default(), started, termination.as_deref());
        }
    };
    // Commands whose product is their output print only it, plus warnings and errors.
    let default_level = match sink {
        Sink::Stderr => "warn",
        Sink::Stdout => "info",
    };
    logging::init(
        settings.log_format,
        settings.log_level.as_deref().unwrap_or(default_level),
        sink,
    );
    let termination = settings.termination_log.clone();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = Error::Runtime(e);
            return finish(Err(e), &Report::default(), started, termination.as_deref());
        }
    };
    let grace = settings.shutdown_grace;
    run(
        runtime,
        config,
        grace,
        command,
        started,
        termination.as_deref(),
    )
}

/// Help and version go to stdout with exit 0; any other parse error is a usage error ending
/// like every failed run (log line, termination message, exit code).
fn bad_command_line(e: clap::Error, started: Instant) -> ExitCode {
    let _ = e.print();
    match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ExitCode::SUCCESS
        }
        _ => {
            logging::init(LogFormat::Auto, "info", Sink::Stdout);
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
    }
}

/// Where `command` logs: on stderr for the commands whose product is on stdout.
fn sink_of(command: &Command) -> Sink {
    match command {
        Command::Status { .. }
        | Command::Schema { .. }
        | Command::Test { .. }
        | Command::Plan { .. }
        | Command::Verify { .. }
        | Command::Create { .. }
        | Command::Import { .. }
        | Command::Unlock { .. } => Sink::Stderr,
        _ => Sink::Stdout,
    }
}

/// Runs `command` on `runtime` under the signal handlers and ends the run with the outcome it
/// returned: its report is the only source of the exit code and the termination message.
fn run(
    runtime: tokio::runtime::Runtime,
    config: Config,
    grace: std::time::Duration,
    command: Command,
    started: Instant,
    termination: Option<&std::path::Path>,
) -> ExitCode {
    // A fleet of targets: every command that needs a database goes through it.
    if config.fleet.targets.is_some() && !command.is_offline() {
        return cli::fleet::run(runtime, config, grace, command, started, termination);
    }
    if let Some(e) = cli::fleet::placeholder_without_targets(&config)
        && !command.is_offline()
    {
        return finish(Err(e), &Report::default(), started, termination);
    }
    let migrator = Migrator::new(config);
    let work = cli::commands::run(&migrator, command);
    let outcome = runtime.block_on(cli::signals::with_signals(&migrator.stop(), grace, work));
    finish(outcome.result, &outcome.report, started, termination)
}

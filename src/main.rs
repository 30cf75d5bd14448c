//! The `crdb-migrate` binary: parses the command line, runs one operation of the library,
//! handles SIGTERM/SIGINT, writes the termination message and maps the outcome to the exit
//! code of SPEC §6. What only the binary needs lives beside it in `cli/`: the clap definitions
//! (`args`), each command (`commands`), rendering (`render`), log setup (`logging`), signals
//! (`signals`) and the end of a run (`termination`).

mod cli;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use cli::args::{Cli, Command};
use cli::logging::{self, Sink};
use cli::termination::{env_termination_log, finish};
use crdb_migrate::{Config, Error, LogFormat, Migrator, Report};

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
                    logging::init(LogFormat::Json, "info", Sink::Stdout);
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
    let sink = match command {
        Command::Status { .. }
        | Command::Plan { .. }
        | Command::Verify { .. }
        | Command::Create { .. }
        | Command::Unlock { .. } => Sink::Stderr,
        _ => Sink::Stdout,
    };
    let config = match Config::from_env(cli.global.overrides(target)) {
        Ok(c) => c,
        Err(e) => {
            logging::init(LogFormat::Json, "info", sink);
            let termination = env_termination_log();
            return finish(Err(e), &Report::default(), started, termination.as_deref());
        }
    };
    logging::init(config.log_format, &config.log_level, sink);
    let termination = config.termination_log.clone();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = Error::Config {
                name: "runtime".into(),
                message: format!("cannot start the async runtime: {e}"),
            };
            return finish(Err(e), &Report::default(), started, termination.as_deref());
        }
    };
    let migrator = Migrator::new(config);
    let mut current = None;
    let result = runtime.block_on(cli::signals::with_signals(&migrator, async {
        current = cli::commands::run(&migrator, command).await?;
        Ok(())
    }));
    let mut report = migrator.progress();
    if current.is_some() {
        report.current = current;
    }
    finish(result, &report, started, termination.as_deref())
}

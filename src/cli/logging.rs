//! The binary's log setup: tracing-subscriber writing JSON lines (default) or text, to stdout
//! (commands whose work is the log) or stderr (commands whose product is on stdout).

use std::io::IsTerminal;

use super::settings::LogFormat;
use super::span_fields::SpanFields;

use tracing_subscriber::filter::{LevelFilter, Targets};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sink {
    /// Standard output (commands whose work is the log: migrate, rollback, wait, repair).
    Stdout,
    /// Standard error (commands whose product is on stdout: status, plan, verify, create).
    Stderr,
}

/// Installs the global subscriber. Later calls do nothing. `LogFormat::Auto` is text when
/// stderr is a terminal, JSON otherwise.
pub(crate) fn init(format: LogFormat, filter: &str, sink: Sink) {
    use tracing_subscriber::layer::SubscriberExt;
    // `target=level` directives (the config check refused any other); the filter is the
    // layer's, so the builder itself lets everything through.
    let filter: Targets = filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_target(false);
    let writer = move || -> Box<dyn std::io::Write> {
        match sink {
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::Stderr => Box::new(std::io::stderr()),
        }
    };
    let format = match format {
        LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Text,
        LogFormat::Auto => LogFormat::Json,
        f => f,
    };
    let result = match format {
        // Flat: the event's fields and its spans' (a fleet's `target`) beside the rest.
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(SpanFields(
                    tracing_subscriber::fmt::format()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_target(false),
                ))
                .with_writer(writer)
                .finish()
                .with(filter),
        ),
        _ => tracing::subscriber::set_global_default(
            builder
                .with_ansi(false)
                .with_writer(writer)
                .finish()
                .with(filter),
        ),
    };
    // Already installed: keep the first.
    let _ = result;
}

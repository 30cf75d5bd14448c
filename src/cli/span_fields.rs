//! JSON log lines carry the fields of the spans they are logged in, flat beside the event's
//! own: a fleet runs each target in a span with `target` (its display name), so every event of
//! that target's run says which target it is about. An event's own `target` (the version a
//! run aims at, in `run.nothing_to_do`) moves to `target_version` on such a line. A field that
//! holds JSON text (`fleet.finished`'s `failed_targets`; see [`JSON_FIELDS`]) is written as the
//! JSON it holds, since tracing's values are flat. Other lines are written by the JSON
//! formatter untouched.

use std::fmt;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose text is JSON, written as that JSON (an array, not a string holding one).
const JSON_FIELDS: [&str; 1] = ["failed_targets"];

/// The JSON event format `F`, with the fields of the event's spans added.
pub(crate) struct SpanFields<F>(pub F);

/// The fields of every span around the event, outermost first.
fn span_fields<S>(ctx: &FmtContext<'_, S, JsonFields>) -> Map<String, Value>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut fields = Map::new();
    if let Some(scope) = ctx.event_scope() {
        for span in scope.from_root() {
            let ext = span.extensions();
            if let Some(f) = ext.get::<FormattedFields<JsonFields>>()
                && let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&f.fields)
            {
                fields.extend(m);
            }
        }
    }
    fields
}

impl<S, F> FormatEvent<S, JsonFields> for SpanFields<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: FormatEvent<S, JsonFields>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let fields = span_fields(ctx);
        let fields_of = event.metadata().fields();
        let nested = JSON_FIELDS.iter().any(|f| fields_of.field(f).is_some());
        if fields.is_empty() && !nested {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Ok(Value::Object(mut own)) = serde_json::from_str::<Value>(line.trim_end()) else {
            return writer.write_str(&line);
        };
        for (k, v) in fields {
            if let Some(mine) = own.insert(k.clone(), v) {
                own.insert(format!("{k}_version"), mine);
            }
        }
        for name in JSON_FIELDS {
            if let Some(Value::String(text)) = own.get(name)
                && let Ok(v) = serde_json::from_str::<Value>(text)
            {
                own.insert(name.to_string(), v);
            }
        }
        writeln!(writer, "{}", Value::Object(own))
    }
}

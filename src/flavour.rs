//! Server flavour specifics: every statement that differs between CockroachDB and PostgreSQL
//! lives here, so the rest of the code runs the same SQL on both.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use crate::connect::Flavour;
use crate::error::{Error, Result};

/// The custom session option migration SQL can branch on: `current_setting('app.environment')`
/// is `ENVIRONMENT`, or the empty string when it is unset.
pub const ENVIRONMENT_OPTION: &str = "app.environment";

/// Session settings for the connection that runs migrations, as `(name, value)` pairs: bounds
/// on statement time and on idling inside a transaction (so a frozen holder's transaction is
/// ended by the server and cannot block the next holder forever), and
/// [`ENVIRONMENT_OPTION`] set to `environment`.
pub fn session_settings(
    statement_timeout: Option<Duration>,
    idle_in_transaction: Duration,
    environment: &str,
) -> Vec<(&'static str, String)> {
    let mut settings = vec![(
        "idle_in_transaction_session_timeout",
        format!("{}ms", idle_in_transaction.as_millis()),
    )];
    if let Some(t) = statement_timeout {
        settings.push(("statement_timeout", format!("{}ms", t.as_millis())));
    }
    settings.push((ENVIRONMENT_OPTION, environment.to_owned()));
    settings
}

/// One statement applying `count` settings with `set_config(name, value, false)` (session
/// scope), names and values bound as parameters `$1, $2, ...` in pairs: no value is ever
/// spliced into SQL text. PostgreSQL and CockroachDB both have `set_config`, and both accept a
/// custom dotted name (CockroachDB from v22).
pub fn set_config_statement(count: usize) -> String {
    let calls: Vec<String> = (0..count)
        .map(|i| format!("set_config(${}, ${}, false)", 2 * i + 1, 2 * i + 2))
        .collect();
    format!("SELECT {}", calls.join(", "))
}

/// Statements only CockroachDB gets, each run on its own so one the server does not know
/// is skipped: from v25.1 `autocommit_before_ddl` (on by default) would silently commit a
/// migration's transaction before each DDL statement; we turn it off for our session, so every
/// transaction we open stays one transaction.
pub fn cockroach_settings() -> &'static [&'static str] {
    &["SET autocommit_before_ddl = off"]
}

/// Which server session a migration connection is: what ending it after it dropped needs,
/// and what progress reports look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionRef {
    /// PostgreSQL's backend pid (`pg_backend_pid()`); 0 on CockroachDB, which is never asked:
    /// its pid is an `INT8` made of the SQL instance id and a random part, which does not fit
    /// an `int4` once instance ids reach 2048 (`pkg/sql/pgwire/pgwirecancel/backend_key_data.go`).
    pub pid: i32,
    /// CockroachDB's session id (`SHOW session_id`: 32 hex digits), for `CANCEL SESSION`.
    pub cockroach: Option<u128>,
}

impl SessionRef {
    /// The CockroachDB session id as CockroachDB writes it (32 lowercase hex digits).
    pub fn cockroach_id(&self) -> Option<String> {
        self.cockroach.map(|id| format!("{id:032x}"))
    }
}

/// Reads CockroachDB's session id text; `None` unless it is exactly 32 hex digits (then
/// [`SessionRef::cockroach_id`] gives back the very same text).
pub fn parse_session_id(text: &str) -> Option<u128> {
    let id = u128::from_str_radix(text, 16).ok()?;
    (format!("{id:032x}") == text).then_some(id)
}

/// [`set_config_statement`] that also returns who the session is (last column): on
/// PostgreSQL the backend pid as `int4`, on CockroachDB the session id
/// (`current_setting('session_id', true)`, a CockroachDB session variable, `pkg/sql/vars.go`).
/// The `missing_ok` form answers NULL where the variable is unknown (a PostgreSQL that calls
/// itself CockroachDB, a proxy in between), so the session's settings never fail on it: without
/// an id, a dropped session is ended by the cancel request alone.
pub fn settings_and_session_statement(count: usize, flavour: Flavour) -> String {
    let who = match flavour {
        Flavour::PostgreSQL => "pg_backend_pid()::INT4",
        Flavour::CockroachDB => "current_setting('session_id', true)",
    };
    format!("{}, {who}", set_config_statement(count))
}

/// Prepares the migration session for this server: the [`session_settings`] in one round trip
/// (`query_typed` sends parse, bind and execute together), then the [`cockroach_settings`] on
/// CockroachDB. `environment` is `ENVIRONMENT`, `""` when unset. Returns who the session is
/// (read in the same round trip), which progress reports and [`end_session`] use.
pub async fn prepare_session(
    client: &Client,
    flavour: Flavour,
    statement_timeout: Option<Duration>,
    idle_in_transaction: Duration,
    environment: &str,
) -> Result<SessionRef> {
    let settings = session_settings(statement_timeout, idle_in_transaction, environment);
    let params: Vec<(&(dyn ToSql + Sync), Type)> = settings
        .iter()
        .flat_map(|(name, value)| {
            [
                (name as &(dyn ToSql + Sync), Type::TEXT),
                (value as &(dyn ToSql + Sync), Type::TEXT),
            ]
        })
        .collect();
    let context = "setting the session's timeouts and app.environment";
    let rows = client
        .query_typed(
            &settings_and_session_statement(settings.len(), flavour),
            &params,
        )
        .await
        .map_err(|e| Error::db(context, e))?;
    let mut session = SessionRef::default();
    if let Some(row) = rows.first() {
        match flavour {
            Flavour::PostgreSQL => {
                session.pid = row
                    .try_get::<_, i32>(settings.len())
                    .map_err(|e| Error::db(context, e))?;
            }
            Flavour::CockroachDB => {
                let id: Option<String> = row.try_get(settings.len()).ok().flatten();
                session.cockroach = id.as_deref().and_then(parse_session_id);
            }
        }
    }
    if flavour == Flavour::CockroachDB {
        for sql in cockroach_settings() {
            match client.batch_execute(sql).await {
                Ok(()) => {}
                // Older CockroachDB: the setting does not exist, nor does the behaviour.
                Err(e) if crate::sqlstate::is_unknown_setting(&e) => {}
                Err(e) => return Err(Error::db(format!("running `{sql}`"), e)),
            }
        }
    }
    Ok(session)
}

/// Ends the session of a migration connection that dropped (from our side), so that nothing
/// it was running can still commit: first a cancel request (its running statement fails and
/// its transaction aborts). A cancel request does nothing to a session idle in a transaction,
/// so then: on PostgreSQL `pg_terminate_backend` of its backend and a bounded wait until it is
/// gone; on CockroachDB `CANCEL SESSION IF EXISTS` with its session id (allowed on the user's
/// own sessions; `IF EXISTS`: gone already is fine), and the server noticing the closed
/// connection. Best effort, bounded.
pub async fn end_session(
    client: &Client,
    flavour: Flavour,
    url: &crate::connect::DbUrl,
    old: &tokio_postgres::CancelToken,
    old_session: Option<SessionRef>,
) {
    let _ = tokio::time::timeout(Duration::from_secs(2), crate::connect::cancel(url, old)).await;
    if flavour == Flavour::CockroachDB {
        if let Some(id) = old_session.and_then(|s| s.cockroach_id()) {
            let params: [&(dyn ToSql + Sync); 1] = [&id];
            let cancel = client.execute(CANCEL_SESSION, &params);
            match tokio::time::timeout(Duration::from_secs(10), cancel).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(
                    event = crate::log::events::DB_RECONNECTED,
                    session_id = %id,
                    error = %e,
                    "could not cancel the old session; going on (the server ends it when it notices the closed connection)"
                ),
                Err(_) => tracing::warn!(
                    event = crate::log::events::DB_RECONNECTED,
                    session_id = %id,
                    "cancelling the old session did not answer within 10 s; going on"
                ),
            }
        }
        return;
    }
    let Some(pid) = old_session.map(|s| s.pid).filter(|p| *p != 0) else {
        return;
    };
    let gone = async {
        let _ = client.query_opt(TERMINATE_BACKEND, &[&pid]).await;
        for _ in 0..200 {
            match client.query_opt(BACKEND_ALIVE, &[&pid]).await {
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(25)).await,
                _ => return,
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .is_err()
    {
        tracing::warn!(
            event = crate::log::events::DB_RECONNECTED,
            pid,
            "the old session did not end within 10 s; going on"
        );
    }
}

/// Ends a CockroachDB session by id, whatever it is doing (idle in a transaction included),
/// rolling its transaction back; `IF EXISTS`: no error when it is gone already.
pub const CANCEL_SESSION: &str = "CANCEL SESSION IF EXISTS $1";
/// Terminates a backend of ours (PostgreSQL allows it for backends of the same role).
pub const TERMINATE_BACKEND: &str = "SELECT pg_terminate_backend($1::INT4)";
/// A row while that backend is still there.
pub const BACKEND_ALIVE: &str = "SELECT 1 FROM pg_stat_activity WHERE pid = $1::INT4";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_cockroach_statements() {
        assert_eq!(cockroach_settings(), &["SET autocommit_before_ddl = off"]);
    }

    #[test]
    fn session_settings_bound_idle_and_statement_time_and_name_the_environment() {
        assert_eq!(
            session_settings(None, Duration::from_secs(30), ""),
            vec![
                ("idle_in_transaction_session_timeout", "30000ms".to_owned()),
                ("app.environment", String::new()),
            ]
        );
        assert_eq!(
            session_settings(
                Some(Duration::from_millis(1500)),
                Duration::from_secs(30),
                "it's"
            ),
            vec![
                ("idle_in_transaction_session_timeout", "30000ms".to_owned()),
                ("statement_timeout", "1500ms".to_owned()),
                ("app.environment", "it's".to_owned()),
            ]
        );
    }

    #[test]
    fn the_settings_round_trip_also_reads_who_the_session_is() {
        assert_eq!(
            settings_and_session_statement(1, Flavour::PostgreSQL),
            "SELECT set_config($1, $2, false), pg_backend_pid()::INT4"
        );
        // Never the pid on CockroachDB: it may not fit an int4.
        assert_eq!(
            settings_and_session_statement(1, Flavour::CockroachDB),
            "SELECT set_config($1, $2, false), current_setting('session_id', true)"
        );
    }

    #[test]
    fn cockroach_session_ids_round_trip_exactly() {
        let text = "1866d6ee4b6d3b780000000000000001";
        let id = parse_session_id(text).unwrap();
        let s = SessionRef {
            pid: 0,
            cockroach: Some(id),
        };
        assert_eq!(s.cockroach_id().as_deref(), Some(text));
        let low = "000000000000000000000000000000ff";
        assert_eq!(
            parse_session_id(low).map(|id| format!("{id:032x}")),
            Some(low.to_string())
        );
        for bad in ["", "ff", "1866D6EE4B6D3B780000000000000001", "zz", "+1"] {
            assert_eq!(parse_session_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn set_config_binds_every_name_and_value() {
        assert_eq!(set_config_statement(1), "SELECT set_config($1, $2, false)");
        assert_eq!(
            set_config_statement(3),
            "SELECT set_config($1, $2, false), set_config($3, $4, false), set_config($5, $6, false)"
        );
    }
}

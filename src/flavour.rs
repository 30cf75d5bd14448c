//! Server flavour specifics: every statement that differs between CockroachDB and PostgreSQL
//! lives here, so the rest of the code runs the same SQL on both.

use std::time::Duration;

use tokio_postgres::Client;

use crate::connect::Flavour;
use crate::error::{Error, Result};

/// Session settings for the connection that runs migrations: bounds on statement time and
/// on idling inside a transaction (so a frozen holder's transaction is ended by the server and
/// cannot block the next holder forever).
pub fn session_settings(
    statement_timeout: Option<Duration>,
    idle_in_transaction: Duration,
) -> String {
    let mut sql = format!(
        "SET idle_in_transaction_session_timeout = '{}ms'",
        idle_in_transaction.as_millis()
    );
    if let Some(t) = statement_timeout {
        sql.push_str(&format!("; SET statement_timeout = '{}ms'", t.as_millis()));
    }
    sql
}

/// Statements only CockroachDB gets, each run on its own so one the server does not know
/// is skipped: from v25.1 `autocommit_before_ddl` (on by default) would silently commit a
/// migration's transaction before each DDL statement; we turn it off for our session, so every
/// transaction we open stays one transaction.
pub fn cockroach_settings() -> &'static [&'static str] {
    &["SET autocommit_before_ddl = off"]
}

/// Prepares the migration session for this server.
pub async fn prepare_session(
    client: &Client,
    flavour: Flavour,
    statement_timeout: Option<Duration>,
    idle_in_transaction: Duration,
) -> Result<()> {
    client
        .batch_execute(&session_settings(statement_timeout, idle_in_transaction))
        .await
        .map_err(|e| Error::db("setting session timeouts", e))?;
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_cockroach_statements() {
        assert_eq!(cockroach_settings(), &["SET autocommit_before_ddl = off"]);
    }

    #[test]
    fn session_settings_bound_idle_and_statement_time() {
        assert_eq!(
            session_settings(None, Duration::from_secs(30)),
            "SET idle_in_transaction_session_timeout = '30000ms'"
        );
        assert_eq!(
            session_settings(Some(Duration::from_millis(1500)), Duration::from_secs(30)),
            "SET idle_in_transaction_session_timeout = '30000ms'; SET statement_timeout = '1500ms'"
        );
    }
}

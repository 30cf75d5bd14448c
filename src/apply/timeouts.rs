//! Per-file session limits: a migration's `statement_timeout` and `lock_timeout` (its
//! `-- @STATEMENT_TIMEOUT` / `-- @LOCK_TIMEOUT`, else `MIGRATE_STATEMENT_TIMEOUT` /
//! `MIGRATE_LOCK_TIMEOUT`). A transactional step sets them with `SET LOCAL` right after `BEGIN`
//! in its flight (they end with the transaction); a `@NO_TRANSACTION` step sets them for the
//! session around its statements and puts the previous values back afterwards.

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};

use crate::flavour::set_config_statement;
use crate::source::Migration;

use super::{Applier, Settings};

/// The limits one migration runs under; `None`: leave the session's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// `statement_timeout`.
    pub statement: Option<Duration>,
    /// `lock_timeout`.
    pub lock: Option<Duration>,
}

/// The file's settings, else the configured defaults.
pub(super) fn limits(m: &Migration, s: &Settings) -> Limits {
    Limits {
        statement: m.statement_timeout.or(s.statement_timeout),
        lock: m.lock_timeout.or(s.lock_timeout),
    }
}

/// `(setting, value in ms)` for each limit given, statement timeout first.
pub(super) fn pairs(l: &Limits) -> Vec<(&'static str, String)> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut out = Vec::new();
    if let Some(d) = l.statement {
        out.push(("statement_timeout", ms(d)));
    }
    if let Some(d) = l.lock {
        out.push(("lock_timeout", ms(d)));
    }
    out
}

/// The `SET LOCAL` statements a transactional flight sends right after `BEGIN`. The values are
/// digits and `ms`, made here from durations, so nothing from a file is spliced into SQL.
/// PostgreSQL and CockroachDB (v21.2+) both take `SET LOCAL` for these two settings.
pub(super) fn set_local(l: &Limits) -> Vec<String> {
    pairs(l)
        .into_iter()
        .map(|(name, value)| format!("SET LOCAL {name} = '{value}'"))
        .collect()
}

/// Reads the current values of `names` in one statement.
pub(super) fn current_settings_statement(names: &[&str]) -> String {
    let calls: Vec<String> = (1..=names.len())
        .map(|i| format!("current_setting(${i})"))
        .collect();
    format!("SELECT {}", calls.join(", "))
}

/// Session values to put back after a `@NO_TRANSACTION` step.
pub(super) type Saved = Vec<(&'static str, String)>;

impl Applier<'_> {
    /// Sets `m`'s limits for the session (a `@NO_TRANSACTION` step); returns the values to
    /// restore with [`Applier::restore_session_limits`]. Nothing to set: nothing sent.
    pub(super) async fn set_session_limits(
        &self,
        m: &Migration,
    ) -> std::result::Result<Saved, tokio_postgres::Error> {
        let wanted = pairs(&limits(m, &self.settings));
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&'static str> = wanted.iter().map(|(n, _)| *n).collect();
        let params: Vec<(&(dyn ToSql + Sync), Type)> = names
            .iter()
            .map(|n| (n as &(dyn ToSql + Sync), Type::TEXT))
            .collect();
        let rows = self
            .client
            .query_typed(&current_settings_statement(&names), &params)
            .await?;
        let mut saved = Vec::new();
        if let Some(row) = rows.first() {
            for (i, name) in names.iter().enumerate() {
                saved.push((*name, row.try_get::<_, String>(i)?));
            }
        }
        self.set_session(&wanted).await?;
        Ok(saved)
    }

    /// Puts back what [`Applier::set_session_limits`] changed; best-effort (a connection gone
    /// took the session with it).
    pub(super) async fn restore_session_limits(&self, saved: Saved) {
        if saved.is_empty() {
            return;
        }
        if let Err(e) = self.set_session(&saved).await {
            tracing::warn!(error = %e, "could not restore the session's statement/lock timeouts");
        }
    }

    async fn set_session(
        &self,
        pairs: &[(&'static str, String)],
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let params: Vec<(&(dyn ToSql + Sync), Type)> = pairs
            .iter()
            .flat_map(|(name, value)| {
                [
                    (name as &(dyn ToSql + Sync), Type::TEXT),
                    (value as &(dyn ToSql + Sync), Type::TEXT),
                ]
            })
            .collect();
        self.client
            .query_typed(&set_config_statement(pairs.len()), &params)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(statement: Option<u64>, lock: Option<u64>) -> Migration {
        Migration {
            statement_timeout: statement.map(Duration::from_millis),
            lock_timeout: lock.map(Duration::from_millis),
            ..Migration::fixture(1)
        }
    }

    #[test]
    fn the_file_wins_over_the_defaults() {
        let defaults = Settings {
            statement_timeout: Some(Duration::from_secs(60)),
            lock_timeout: Some(Duration::from_secs(5)),
            ..Settings::default()
        };
        assert_eq!(
            limits(&m(Some(600_000), None), &defaults),
            Limits {
                statement: Some(Duration::from_secs(600)),
                lock: Some(Duration::from_secs(5)),
            }
        );
        assert_eq!(
            limits(&m(None, None), &Settings::default()),
            Limits {
                statement: None,
                lock: None
            }
        );
    }

    #[test]
    fn exact_set_local_statements() {
        let l = limits(&m(Some(600_000), Some(200)), &Settings::default());
        assert_eq!(
            set_local(&l),
            vec![
                "SET LOCAL statement_timeout = '600000ms'".to_string(),
                "SET LOCAL lock_timeout = '200ms'".to_string(),
            ]
        );
        let only_lock = Limits {
            statement: None,
            lock: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            set_local(&only_lock),
            vec!["SET LOCAL lock_timeout = '5000ms'".to_string()]
        );
        assert!(set_local(&limits(&m(None, None), &Settings::default())).is_empty());
    }

    #[test]
    fn session_limits_are_read_and_set_with_bound_names() {
        assert_eq!(
            current_settings_statement(&["statement_timeout", "lock_timeout"]),
            "SELECT current_setting($1), current_setting($2)"
        );
        assert_eq!(
            pairs(&limits(&m(None, Some(1500)), &Settings::default())),
            vec![("lock_timeout", "1500ms".to_string())]
        );
    }
}

//! Who held the lock a migration timed out on: right after the last lock timeout, on the
//! migration's own connection, the other sessions holding granted locks on the relations the
//! failed statement names (PostgreSQL's `pg_locks` joined to `pg_stat_activity`). Best-effort
//! and bounded: one query, at most [`LOOKUP_TIMEOUT`], at most [`MAX_BLOCKERS`] rows; on
//! CockroachDB, or when the lookup fails, the error just says the holder is unknown.

use std::time::Duration;

use tokio_postgres::Client;

use crate::connect::Flavour;

/// The longest the lookup may take.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The most sessions named.
pub(super) const MAX_BLOCKERS: i64 = 5;

/// Granted locks of other sessions on relations named `$1` (lower-case names) in this
/// database, one row per session (its strongest-looking lock first), oldest query first.
pub(super) const BLOCKERS_SQL: &str = concat!(
    "SELECT pid, application_name, state, query_start, query, relation, mode FROM (",
    " SELECT DISTINCT ON (a.pid) a.pid, coalesce(a.application_name, '') AS application_name,",
    " coalesce(a.state, '') AS state,",
    " to_char(a.query_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS query_start,",
    " coalesce(a.query, '') AS query, c.relname::text AS relation, l.mode, a.query_start AS started",
    " FROM pg_locks l",
    " JOIN pg_class c ON c.oid = l.relation",
    " JOIN pg_stat_activity a ON a.pid = l.pid",
    " WHERE l.granted AND l.pid <> pg_backend_pid()",
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    " AND lower(c.relname::text) = ANY($1::text[])",
    " ORDER BY a.pid, l.mode = 'AccessShareLock', l.mode",
    ") b ORDER BY started NULLS LAST, pid LIMIT $2"
);

/// A session holding a lock the migration waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Blocker {
    /// Its backend pid (`pg_terminate_backend(pid)` ends it).
    pub pid: i32,
    /// `application_name`.
    pub application_name: String,
    /// `active`, `idle in transaction`, ...
    pub state: String,
    /// When its current (or last) query started, RFC 3339 UTC.
    pub query_start: Option<String>,
    /// Its current (or last) query, on one line, shortened.
    pub query: String,
    /// The relation it holds a lock on.
    pub relation: String,
    /// The lock mode.
    pub mode: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} (application_name {:?}, state {:?}, query started {}, {} on {}, query `{}`)",
            self.pid,
            self.application_name,
            self.state,
            self.query_start.as_deref().unwrap_or("?"),
            self.mode,
            self.relation,
            self.query
        )
    }
}

/// The sentence the lock-timeout error ends with.
pub(super) fn describe(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "the server did not say which session held the lock".into();
    }
    let list: Vec<String> = blockers.iter().map(|b| b.to_string()).collect();
    format!("the lock was held by {}", list.join("; "))
}

/// The sessions holding locks on `relations`; empty on CockroachDB, when nothing is named, or
/// when the lookup fails or takes longer than [`LOOKUP_TIMEOUT`].
pub(super) async fn find(
    client: &Client,
    flavour: Flavour,
    relations: Vec<String>,
) -> Vec<Blocker> {
    if flavour != Flavour::PostgreSQL || relations.is_empty() {
        return Vec::new();
    }
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&relations, &MAX_BLOCKERS];
    let query = client.query(BLOCKERS_SQL, &params);
    let rows = match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not look up which session held the lock");
            return Vec::new();
        }
        Err(_) => return Vec::new(),
    };
    rows.iter()
        .filter_map(|r| {
            Some(Blocker {
                pid: r.try_get(0).ok()?,
                application_name: r.try_get(1).ok()?,
                state: r.try_get(2).ok()?,
                query_start: r.try_get(3).ok()?,
                query: super::excerpt(&r.try_get::<_, String>(4).ok()?),
                relation: r.try_get(5).ok()?,
                mode: r.try_get(6).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookup_is_bounded_and_binds_the_names() {
        assert!(BLOCKERS_SQL.contains("ANY($1::text[])"));
        assert!(BLOCKERS_SQL.ends_with("LIMIT $2"));
        assert!(BLOCKERS_SQL.contains("l.pid <> pg_backend_pid()"));
        // Every piece is separated from the next (no `lJOIN`).
        assert!(
            BLOCKERS_SQL.contains("FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN")
        );
        assert_eq!(LOOKUP_TIMEOUT, Duration::from_secs(2));
    }

    #[test]
    fn blockers_are_described_for_the_operator() {
        let b = Blocker {
            pid: 4242,
            application_name: "report-job".into(),
            state: "idle in transaction".into(),
            query_start: Some("2025-01-02T03:04:05Z".into()),
            query: "LOCK TABLE t IN ACCESS EXCLUSIVE MODE".into(),
            relation: "t".into(),
            mode: "AccessExclusiveLock".into(),
        };
        let d = describe(std::slice::from_ref(&b));
        assert_eq!(
            d,
            "the lock was held by pid 4242 (application_name \"report-job\", state \"idle in transaction\", query started 2025-01-02T03:04:05Z, AccessExclusiveLock on t, query `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`)"
        );
        assert!(describe(&[]).contains("did not say"));
    }
}

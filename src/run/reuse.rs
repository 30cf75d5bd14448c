//! Connections handed from one run of a fleet to the next. Targets whose URLs differ only in
//! the `search_path` their `options` carry (schema-per-tenant) open the same kind of session,
//! and starting a server backend costs far more than a run with nothing to do: so a run that
//! ended cleanly gives its connections to a [`Pool`], and the next such target takes them
//! instead of connecting. A taken connection is reset to what a fresh one with the target's
//! own URL gives — `DISCARD ALL` (settings back to the connection's startup values, prepared
//! statements, temporary tables, advisory locks and cursors gone; on CockroachDB, per
//! `pkg/sql/discard.go`: settings, prepared statements, sequence caches and temporary tables,
//! older releases only the first two), then the target's `search_path` with
//! `set_config`, which parses the list as the startup option does — in the run's first flight.
//! Every schema target's first read also checks that the first schema of its `search_path`
//! exists: without it the first migration would fail half-way (or land in another schema).
//! The pool keeps at most one idle set per worker slot; dropping it closes them all.

use std::sync::{Arc, Mutex};

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::connect::{DbUrl, ServerInfo};
use crate::error::Error;

/// Idle connections of finished runs, shared by one fleet's runs.
#[derive(Clone, Default)]
pub(crate) struct Pool(Arc<Mutex<Idle>>);

#[derive(Default)]
struct Idle {
    cap: usize,
    sets: Vec<(String, Set)>,
}

/// What one finished run gives back: its migration connection, and the lease's when it had one.
pub(crate) struct Set {
    pub client: Client,
    pub info: ServerInfo,
    pub side: Option<Arc<Client>>,
}

impl Pool {
    /// A pool keeping at most `cap` idle sets (one per worker slot).
    pub(crate) fn new(cap: usize) -> Pool {
        Pool(Arc::new(Mutex::new(Idle {
            cap: cap.max(1),
            sets: Vec::new(),
        })))
    }

    /// What a run for `name`, connecting to `url`, needs to take and give back connections;
    /// `None` when its URL sets no `search_path` (such targets are not reused).
    pub(crate) fn tenant(&self, name: &str, url: &DbUrl) -> Option<Tenant> {
        let (key, search_path) = url.reuse_key()?;
        Some(Tenant {
            pool: self.clone(),
            name: name.to_string(),
            schema: first_schema(&search_path),
            key,
            search_path,
        })
    }

    /// How many idle sets the pool holds.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.0.lock().map_or(0, |i| i.sets.len())
    }
}

/// One schema target's view of the pool.
pub(crate) struct Tenant {
    pool: Pool,
    name: String,
    key: String,
    search_path: String,
    /// The first schema of `search_path` as the server names it (`None`: `$user`, or empty).
    schema: Option<String>,
}

/// The first schema of a `search_path` list as the server resolves it: a double-quoted name
/// as written (`""` is a quote), an unquoted one folded to lower case; `None` for `$user`
/// (the user's schema, or skipped when missing) and an empty list.
pub(crate) fn first_schema(list: &str) -> Option<String> {
    let s = list.trim_start();
    let name = if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    out.push('"');
                }
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        let end = s.find(',').unwrap_or(s.len());
        s[..end].trim().to_ascii_lowercase()
    };
    (!name.is_empty() && name != "$user").then_some(name)
}

/// Puts the target's `search_path` (reused connections only) and tells whether its first schema
/// exists, in one statement.
const RESET_SQL: &str = "SELECT set_config('search_path', $1, false), $2::text IS NULL OR \
     EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $2)";
/// Tells whether the target's first schema exists (fresh connections).
const CHECK_SQL: &str = "SELECT $1::text IS NULL OR \
     EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)";

impl Tenant {
    /// An idle set of an earlier target with the same key, if any is open.
    pub(crate) fn take(&self) -> Option<Set> {
        let mut idle = self.pool.0.lock().ok()?;
        let i = idle
            .sets
            .iter()
            .position(|(k, s)| *k == self.key && !s.client.is_closed())?;
        Some(idle.sets.swap_remove(i).1)
    }

    /// Gives `set` back for the next target (called only after a clean end); dropped (closed)
    /// when it is broken or the pool is full.
    pub(crate) fn give_back(&self, set: Set) {
        if set.client.is_closed() || set.side.as_ref().is_some_and(|s| s.is_closed()) {
            return;
        }
        if let Ok(mut idle) = self.pool.0.lock()
            && idle.sets.len() < idle.cap
        {
            idle.sets.push((self.key.clone(), set));
        }
    }

    /// The first read's part for this target: on a reused connection, the reset (sent before
    /// the ledger read, which must see the target's schema); on every connection, whether the
    /// first schema exists. `Ok(false)`: it does not.
    pub(crate) async fn prepare(
        &self,
        client: &Client,
        reused: bool,
    ) -> Result<bool, tokio_postgres::Error> {
        let schema = self.schema.as_deref();
        let row = if reused {
            client.clear_type_cache();
            let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
                [(&self.search_path, Type::TEXT), (&schema, Type::TEXT)];
            let (discard, row) = tokio::join!(
                client.batch_execute("DISCARD ALL"),
                client.query_typed(RESET_SQL, &params)
            );
            discard?;
            row?
        } else {
            client
                .query_typed(CHECK_SQL, &[(&schema, Type::TEXT)])
                .await?
        };
        let column = usize::from(reused);
        Ok(row.first().is_none_or(|r| r.get::<_, bool>(column)))
    }

    /// Resets a reused lease connection: the same reset, before the lease is taken on it.
    pub(crate) async fn reset_side(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        client.clear_type_cache();
        let none: Option<&str> = None;
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
            [(&self.search_path, Type::TEXT), (&none, Type::TEXT)];
        let (discard, row) = tokio::join!(
            client.batch_execute("DISCARD ALL"),
            client.query_typed(RESET_SQL, &params)
        );
        discard.and(row.map(drop))
    }

    /// The refusal when the first schema of the target's `search_path` does not exist.
    pub(crate) fn missing(&self) -> Error {
        let schema = self.schema.as_deref().unwrap_or_default();
        Error::Config {
            name: format!("target {}", self.name),
            message: format!(
                "schema {schema:?} (the first in its search_path) does not exist: create it \
                 before migrating this target; nothing was changed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_schema_folds_as_the_server_does() {
        assert_eq!(first_schema("Tenant_A").as_deref(), Some("tenant_a"));
        assert_eq!(first_schema(" t1 , public").as_deref(), Some("t1"));
        assert_eq!(
            first_schema("\"Mixed, \"\"Q\"\"\",x").as_deref(),
            Some("Mixed, \"Q\"")
        );
        assert_eq!(first_schema("$user, public"), None);
        assert_eq!(first_schema(""), None);
    }

    #[test]
    fn only_search_path_urls_are_tenants_and_an_empty_pool_gives_nothing() {
        let pool = Pool::new(2);
        let url = DbUrl::parse("postgres://u@h/d?options=-c%20search_path%3Dt1").unwrap();
        let other = DbUrl::parse("postgres://u@h/e?options=-c%20search_path%3Dt1").unwrap();
        let t = pool.tenant("t1", &url).unwrap();
        assert!(
            pool.tenant("d", &DbUrl::parse("postgres://u@h/d").unwrap())
                .is_none()
        );
        assert!(t.take().is_none());
        assert_eq!(pool.idle(), 0);
        assert!(pool.tenant("t1", &other).unwrap().take().is_none());
    }
}

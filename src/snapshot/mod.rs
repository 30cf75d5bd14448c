//! The live schema as one canonical value: a [`Snapshot`] read by one reader per server
//! flavour (`postgres` from `pg_catalog`, `cockroach` from `SHOW CREATE ALL ...`), with a
//! stable text form, a hash and a [`Snapshot::diff`] naming what was added, removed or changed.
//!
//! Canonical means: objects sorted by kind and qualified name, each object's parts (columns,
//! constraints, indexes, ...) sorted by name, so column order does not count; every value has
//! its whitespace runs collapsed to one space, so neither does the layout of a function body.
//! To add an object kind: read it in both readers as `(kind, name, parts)` and insert it with
//! [`Snapshot::insert`]; the text form, hash and diff follow.

mod cockroach;
pub(crate) mod diff;
mod objects;
mod postgres;
mod postgres_more;
mod postgres_objects;
mod prepared;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::connect::{Flavour, ServerInfo};
use crate::error::Result;
use crate::store::Tables;

pub use diff::{Change, Parts};
pub use objects::{Objects, text_hash};
pub use prepared::Reader;

/// The server-side query building the live [`Objects`] text, on PostgreSQL only (CockroachDB
/// cannot run the readers' `SHOW CREATE ALL` inside a query): a scalar subquery whose text
/// array parameter `ours` (e.g. `$4`) names our ledger and lease tables, see [`ours`].
pub fn objects_sql(ours: &str, tables: &Tables) -> String {
    postgres::objects_sql(ours, tables.schemas())
}

/// Our own tables, left out of every snapshot: the ledger and the lease.
pub fn ours(tables: &Tables) -> Vec<String> {
    vec![
        tables.name().to_string(),
        format!("{}_lease", tables.name()),
    ]
}

/// The canonical schema: (kind, qualified name) → parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    objects: BTreeMap<(String, String), Parts>,
}

impl Snapshot {
    /// Reads the live schema of the connected database, leaving out our ledger and lease.
    pub async fn read(client: &Client, server: &ServerInfo, tables: &Tables) -> Result<Snapshot> {
        let ours = ours(tables);
        match server.flavour {
            Flavour::PostgreSQL => postgres::read(client, &ours, tables.schemas()).await,
            Flavour::CockroachDB => {
                let mut s = cockroach::read(client, &server.version, &ours).await?;
                s.retain_schemas(tables.schemas());
                Ok(s)
            }
        }
    }

    /// Keeps only the objects of `schemas` (none: keeps all): a schema is kept by its name,
    /// another object by the schema its qualified name starts with; objects whose names carry
    /// no schema of the database (extensions, casts, ...) are kept.
    fn retain_schemas(&mut self, schemas: &[String]) {
        if schemas.is_empty() {
            return;
        }
        let mut known: Vec<String> = self
            .objects
            .keys()
            .filter(|(kind, _)| kind == "schema")
            .map(|(_, name)| name.clone())
            .chain(std::iter::once("public".to_string()))
            .collect();
        known.extend(schemas.iter().cloned());
        self.objects.retain(|(kind, name), _| {
            let schema = if kind == "schema" {
                Some(name.as_str())
            } else {
                known
                    .iter()
                    .map(String::as_str)
                    .find(|s| name.starts_with(&format!("{s}.")))
            };
            schema.is_none_or(|s| schemas.iter().any(|k| k == s))
        });
    }

    /// Adds (or extends) an object; every value is made canonical on the way in.
    pub fn insert(
        &mut self,
        kind: &str,
        name: &str,
        parts: impl IntoIterator<Item = (String, String)>,
    ) {
        let entry = self
            .objects
            .entry((kind.to_string(), name.to_string()))
            .or_default();
        for (part, value) in parts {
            entry.insert(part, canonical(&value));
        }
    }

    /// The objects a user made: all but the `public` schema and the `plpgsql` extension that
    /// every new database holds, as `kind name`.
    pub fn user_objects(&self) -> Vec<String> {
        self.objects
            .keys()
            .filter(|(kind, name)| {
                !matches!(
                    (kind.as_str(), name.as_str()),
                    ("schema", "public") | ("extension", "plpgsql")
                )
            })
            .map(|(kind, name)| format!("{kind} {name}"))
            .collect()
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The stable text form: one `kind name` line per object, then one indented
    /// `part: value` line per part.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for ((kind, name), parts) in &self.objects {
            out.push_str(&format!("{kind} {name}\n"));
            for (part, value) in parts {
                out.push_str(&format!("  {part}: {value}\n"));
            }
        }
        out
    }

    /// A snapshot read back from its [`Snapshot::text`] form (as stored after a run); lines
    /// it cannot read are skipped, so a damaged text shows up as differences, not an error.
    pub fn from_text(text: &str) -> Snapshot {
        let mut s = Snapshot::default();
        let mut object: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(part) = line.strip_prefix("  ") {
                if let (Some(key), Some((part, value))) = (&object, part.split_once(": ")) {
                    s.insert(&key.0, &key.1, [(part.to_string(), value.to_string())]);
                }
            } else if let Some((kind, name)) = line.split_once(' ') {
                s.insert(kind, name, []);
                object = Some((kind.to_string(), name.to_string()));
            }
        }
        s
    }

    /// The SHA-256 of the text form, in hex.
    pub fn hash(&self) -> String {
        Sha256::digest(self.text().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The JSON form: `{"hash": ..., "objects": [{"kind", "name", "parts": {...}}]}`.
    pub fn json(&self) -> serde_json::Value {
        let objects: Vec<_> = self
            .objects
            .iter()
            .map(|((kind, name), parts)| {
                serde_json::json!({"kind": kind, "name": name, "parts": parts})
            })
            .collect();
        serde_json::json!({"hash": self.hash(), "objects": objects})
    }

    /// What changed from `self` to `other`: each object added, removed or changed, and for a
    /// changed one each part added, removed or changed.
    pub fn diff(&self, other: &Snapshot) -> Vec<Change> {
        diff::diff(&self.objects, &other.objects)
    }
}

/// Collapses every whitespace run to one space and trims the ends.
fn canonical(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(default: &str, order: &[&str]) -> Snapshot {
        let mut s = Snapshot::default();
        for c in order {
            let v = if *c == "age" {
                default.to_string()
            } else {
                "text".into()
            };
            s.insert("table", "public.t", [(format!("column {c}"), v)]);
        }
        s
    }

    #[test]
    fn column_order_and_whitespace_do_not_count() {
        let a = table("integer  default\n 1", &["age", "name"]);
        let b = table("integer default 1", &["name", "age"]);
        assert_eq!(a.text(), b.text());
        assert_eq!(a.hash(), b.hash());
        assert!(a.diff(&b).is_empty());
        assert_eq!(
            a.text(),
            "table public.t\n  column age: integer default 1\n  column name: text\n"
        );
    }

    #[test]
    fn diff_names_the_changed_part() {
        let a = table("integer default 1", &["age"]);
        let b = table("integer default 2", &["age"]);
        let mut c = b.clone();
        c.insert(
            "index",
            "public.i",
            [("definition".to_string(), "x".to_string())],
        );
        let changes = a.diff(&c);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "added index public.i",
                "changed table public.t: column age: `integer default 1` -> `integer default 2`"
            ]
        );
        assert_eq!(c.diff(&a).len(), 2);
        assert_eq!(Snapshot::from_text(&c.text()), c);
        assert_ne!(a.hash(), b.hash());
    }
}

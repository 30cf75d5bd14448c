//! The two bookkeeping tables (docs/commands.md, "Tables"): the ledger `_migrations` and the lease
//! `_migrations_lease`. [`TableName`] is the only way a table name reaches SQL: validated once,
//! quoted in one place. `ledger` reads, creates and adopts the ledger; `lease` holds the lease
//! row's statements (`owner` says which acquisition took it); `fence` the fenced writes that
//! tie a ledger change to our lease; `schema` the snapshot stored on the lease row after a run.

pub mod fence;
pub mod lease;
pub mod ledger;
pub(crate) mod owner;
pub mod schema;
pub(crate) mod setup;

pub use crate::table_name::TableName;

/// Quotes an SQL identifier: wraps it in double quotes and doubles any inside. The one
/// quoting function for identifiers (table names, database names).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The ledger and lease tables' names as SQL.
#[derive(Debug, Clone)]
pub struct Tables {
    name: TableName,
    ledger: String,
    lease: String,
    /// Ledger reads through these tables fetch each row's undo text (see [`Tables::with_undo`]).
    undo: bool,
    /// The schemas a schema snapshot covers; empty: every schema (see [`Tables::scoped`]).
    schemas: Vec<String>,
}

impl Tables {
    /// The tables of ledger `name`.
    pub fn new(name: &TableName) -> Tables {
        Tables {
            name: name.clone(),
            ledger: quote_ident(name.as_str()),
            lease: quote_ident(&format!("{}_lease", name.as_str())),
            undo: false,
            schemas: Vec::new(),
        }
    }

    /// The same tables, with ledger reads that fetch each row's undo text when `undo`: only
    /// rollback planning needs it, so every other read (a no-op `migrate`, `wait` polling,
    /// `status`) leaves the text on the server and learns only whether one is kept.
    pub fn with_undo(mut self, undo: bool) -> Tables {
        self.undo = undo;
        self
    }

    /// The same tables, with schema snapshots narrowed to the schemas of the `search_path` that
    /// `database_url`'s `options` set (`options=-c search_path=tenant_7`, as a fleet of schema
    /// targets does): a tenant's schema, its drift and its undo test are its own, not its
    /// neighbours'. A URL that sets no `search_path` (or cannot be parsed) keeps every schema.
    pub fn scoped(mut self, database_url: Option<&str>) -> Tables {
        let search_path = database_url
            .and_then(|url| crate::connect::DbUrl::parse(url).ok())
            .and_then(|url| url.search_path());
        self.schemas = search_path.map(|s| schemas_of(&s)).unwrap_or_default();
        self
    }

    /// The schemas a snapshot covers; empty: every schema.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
    }

    /// Whether ledger reads fetch each row's undo text.
    pub fn reads_undo(&self) -> bool {
        self.undo
    }

    /// The ledger's bare name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The ledger, quoted for SQL, e.g. `"_migrations"`.
    pub fn ledger(&self) -> &str {
        &self.ledger
    }

    /// The lease table, quoted for SQL, e.g. `"_migrations_lease"`.
    pub fn lease(&self) -> &str {
        &self.lease
    }
}

/// The schema names of a `search_path` value as the server reads them: comma-separated,
/// unquoted names folded to lower case, `"quoted"` ones kept, `$user` and empty items left out.
fn schemas_of(search_path: &str) -> Vec<String> {
    search_path
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "$user" && *s != "\"$user\"")
        .map(
            |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => s.to_lowercase(),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("we\"ird db"), "\"we\"\"ird db\"");
        let t = Tables::new(&TableName::new("m").unwrap_or_default());
        assert_eq!(
            (t.ledger(), t.lease(), t.name()),
            ("\"m\"", "\"m_lease\"", "m")
        );
    }

    #[test]
    fn a_snapshot_is_scoped_to_the_search_path_the_url_sets() {
        let t = |url: &str| Tables::new(&TableName::default()).scoped(Some(url));
        let url = "postgres://u@h/d?options=-c%20search_path%3DTenant_7,%22Mixed%22,%24user";
        assert_eq!(t(url).schemas(), ["tenant_7", "Mixed"]);
        assert!(t("postgres://u@h/d").schemas().is_empty());
        assert!(t("not a url").schemas().is_empty());
    }
}

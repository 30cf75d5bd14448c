//! The two bookkeeping tables (docs/commands.md, "Tables"): the ledger `_migrations` and the lease
//! `_migrations_lease`. [`TableName`] is the only way a table name reaches SQL: validated once,
//! quoted in one place. `ledger` reads, creates and adopts the ledger; `lease` holds the lease
//! row's statements; `fence` the fenced writes that tie a ledger change to our lease.

pub mod fence;
pub mod lease;
pub mod ledger;
pub(crate) mod setup;

/// A validated ledger table name: an unquoted lowercase SQL identifier (so it needs no
/// escaping), at most 63 characters. The lease table is `<name>_lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(String);

impl TableName {
    /// Validates `name`; the error says what a table name may hold.
    pub fn new(name: &str) -> Result<TableName, String> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(TableName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a table name: use lowercase letters, digits and _, starting with a letter or _, at most 63 characters"
            ))
        }
    }

    /// The bare name, e.g. `_migrations` (for catalog lookups as a bound parameter).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TableName {
    fn default() -> TableName {
        TableName("_migrations".into())
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
}

impl Tables {
    /// The tables of ledger `name`.
    pub fn new(name: &TableName) -> Tables {
        Tables {
            name: name.clone(),
            ledger: quote_ident(name.as_str()),
            lease: quote_ident(&format!("{}_lease", name.as_str())),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_validated() {
        assert!(TableName::new("_migrations").is_ok());
        assert!(TableName::new("app_migrations2").is_ok());
        for bad in ["", "Migrations", "a-b", "1abc", "a\"b", &"x".repeat(64)] {
            assert!(TableName::new(bad).is_err(), "{bad}");
        }
    }

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
}

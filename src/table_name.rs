//! The ledger table's name, validated where the configuration reads it and quoted where the
//! store writes SQL: a leaf, so the configuration need not depend on the store.

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
}

//! Versions as each tool's history table stores them, and each tool's order of them.

use super::Tool;

/// A sort key in the tool's own order: numbers compare numerically part by part, text by bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OrderKey {
    /// Numeric parts, each `(digit count without leading zeros, digits)`.
    Parts(Vec<(usize, String)>),
    /// Byte-wise string order (pop, Diesel, dbmate's file-name order).
    Text(String),
}

/// Digits without leading zeros (`"0"` when all are zeros).
pub(crate) fn strip_zeros(digits: &str) -> String {
    let s = digits.trim_start_matches('0');
    if s.is_empty() { "0".into() } else { s.into() }
}

pub(crate) fn numeric_key(digits: &str) -> OrderKey {
    let s = strip_zeros(digits);
    OrderKey::Parts(vec![(s.len(), s)])
}

/// The canonical form of a version as `tool`'s history table holds it, for matching history
/// rows with files (see the module docs). `None` when it is not a version of that tool.
pub(crate) fn canonical_version(tool: Tool, v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match tool {
        Tool::GolangMigrate | Tool::Goose | Tool::Sqlx => {
            let neg = v.strip_prefix('-');
            let digits = neg.unwrap_or(v);
            if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
                return None;
            }
            let s = strip_zeros(digits);
            Some(if neg.is_some() && s != "0" {
                format!("-{s}")
            } else {
                s
            })
        }
        Tool::Flyway => {
            let parts: Vec<&str> = v.split(['.', '_']).collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return None;
            }
            let mut parts: Vec<String> = parts.into_iter().map(strip_zeros).collect();
            while parts.len() > 1 && parts.last().is_some_and(|p| p == "0") {
                parts.pop();
            }
            Some(parts.join("."))
        }
        Tool::Dbmate | Tool::Pop | Tool::Diesel => Some(v.to_string()),
    }
}

/// The tool's order key for a canonical version (dbmate: the version; its file order is used
/// when importing).
pub(crate) fn version_key(tool: Tool, canonical: &str) -> OrderKey {
    match tool {
        Tool::GolangMigrate | Tool::Goose | Tool::Sqlx | Tool::Flyway => OrderKey::Parts(
            canonical
                .split('.')
                .map(|p| (p.len(), p.to_string()))
                .collect(),
        ),
        Tool::Dbmate | Tool::Pop | Tool::Diesel => OrderKey::Text(canonical.to_string()),
    }
}

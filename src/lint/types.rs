//! Column types, as far as lint needs them: enough to tell a widening change (which
//! CockroachDB does in place, and old code keeps working with) from a narrowing or converting
//! one.

use super::lex::Tok;

/// A column type, read from the tokens after the column name (or after `TYPE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ty {
    /// `STRING`, `TEXT`, `VARCHAR`, `CHARACTER VARYING`: the length limit, `None` for none.
    Str(Option<u64>),
    /// `CHAR(n)` / `CHARACTER(n)`: blank-padded, its own family.
    Char(Option<u64>),
    /// Integers, by width in bytes (`INT` read as PostgreSQL's 4).
    Int(u8),
    /// `DECIMAL` / `NUMERIC`: precision and scale, `None` for unbounded.
    Decimal(Option<(u64, u64)>),
    /// Anything else, by its upper-cased spelling (parameters included).
    Other(String),
}

/// Words that end a type in a column definition or an `ALTER ... TYPE` clause.
const AFTER_TYPE: [&str; 14] = [
    "USING",
    "COLLATE",
    "NOT",
    "NULL",
    "DEFAULT",
    "PRIMARY",
    "UNIQUE",
    "CHECK",
    "REFERENCES",
    "CONSTRAINT",
    "AS",
    "GENERATED",
    "FAMILY",
    "ON",
];

/// Reads a type from the start of `toks`; `None` when no type word is there.
pub(super) fn parse_type(toks: &[Tok]) -> Option<Ty> {
    let mut words = Vec::new();
    let mut k = 0;
    while let Some(Tok::Word { upper, .. }) = toks.get(k) {
        if AFTER_TYPE.contains(&upper.as_str()) {
            break;
        }
        words.push(upper.as_str());
        k += 1;
    }
    if words.is_empty() {
        return None;
    }
    // Parameters: `(n)` or `(p, s)`; numbers only.
    let mut params: Vec<u64> = Vec::new();
    let mut raw_params = String::new();
    if toks.get(k).is_some_and(|t| t.is_punct('(')) {
        for t in &toks[k + 1..] {
            match t {
                Tok::Punct(')') => break,
                Tok::Punct(',') => raw_params.push(','),
                Tok::Number(n) => {
                    raw_params.push_str(n);
                    params.extend(n.parse::<u64>().ok());
                }
                _ => raw_params.push('?'),
            }
        }
    }
    let name = words.join(" ");
    let len = params.first().copied();
    Some(match name.as_str() {
        "STRING" | "TEXT" | "VARCHAR" | "CHARACTER VARYING" | "CHAR VARYING" => Ty::Str(len),
        "CHAR" | "CHARACTER" | "BPCHAR" => Ty::Char(len.or(Some(1))),
        "INT2" | "SMALLINT" => Ty::Int(2),
        "INT" | "INT4" | "INTEGER" => Ty::Int(4),
        "INT8" | "BIGINT" | "INT64" => Ty::Int(8),
        "DECIMAL" | "NUMERIC" | "DEC" => Ty::Decimal(match params[..] {
            [] => None,
            [p] => Some((p, 0)),
            [p, s, ..] => Some((p, s)),
        }),
        _ if raw_params.is_empty() => Ty::Other(name),
        _ => Ty::Other(format!("{name}({raw_params})")),
    })
}

/// Does changing a column from `old` (when known) to `new` only widen it: every value of the
/// old type is a value of the new one, stored alike, so CockroachDB changes it in place and
/// old code keeps working? With `old` unknown, only an unbounded string counts as widening.
pub(super) fn widens(old: Option<&Ty>, new: &Ty) -> bool {
    let Some(old) = old else {
        return matches!(new, Ty::Str(None));
    };
    if old == new {
        return true;
    }
    match (old, new) {
        (Ty::Str(_), Ty::Str(None)) => true,
        (Ty::Str(Some(a)), Ty::Str(Some(b))) => b >= a,
        (Ty::Int(a), Ty::Int(b)) => b >= a,
        (Ty::Decimal(Some(_)), Ty::Decimal(None)) => true,
        (Ty::Decimal(Some((p, s))), Ty::Decimal(Some((p2, s2)))) => p2 >= p && s2 == s,
        _ => false,
    }
}

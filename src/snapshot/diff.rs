//! The difference between two snapshots, object by object and part by part.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One object's parts: part name (e.g. `column email`) → canonical value.
pub type Parts = BTreeMap<String, String>;

/// One object added, removed or changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Present only in the second snapshot.
    Added {
        /// Object kind, e.g. `table`.
        kind: String,
        /// Qualified name.
        name: String,
    },
    /// Present only in the first snapshot.
    Removed {
        /// Object kind.
        kind: String,
        /// Qualified name.
        name: String,
    },
    /// Present in both with different parts.
    Changed {
        /// Object kind.
        kind: String,
        /// Qualified name.
        name: String,
        /// Each differing part: (part, before, after); `None` where it is absent.
        parts: Vec<(String, Option<String>, Option<String>)>,
    },
}

type Objects = BTreeMap<(String, String), Parts>;

pub(super) fn diff(a: &Objects, b: &Objects) -> Vec<Change> {
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for key @ (kind, name) in keys {
        let (kind, name) = (kind.clone(), name.clone());
        match (a.get(key), b.get(key)) {
            (None, Some(_)) => out.push(Change::Added { kind, name }),
            (Some(_), None) => out.push(Change::Removed { kind, name }),
            (Some(x), Some(y)) if x != y => {
                let parts = x
                    .keys()
                    .chain(y.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|p| x.get(*p) != y.get(*p))
                    .map(|p| (p.clone(), x.get(p).cloned(), y.get(p).cloned()))
                    .collect();
                out.push(Change::Changed { kind, name, parts });
            }
            _ => {}
        }
    }
    out
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { kind, name } => write!(f, "added {kind} {name}"),
            Change::Removed { kind, name } => write!(f, "removed {kind} {name}"),
            Change::Changed { kind, name, parts } => {
                write!(f, "changed {kind} {name}")?;
                for (i, (part, before, after)) in parts.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    let show = |v: &Option<String>| match v {
                        Some(v) => format!("`{v}`"),
                        None => "absent".to_string(),
                    };
                    write!(f, "{sep}{part}: {} -> {}", show(before), show(after))?;
                }
                Ok(())
            }
        }
    }
}

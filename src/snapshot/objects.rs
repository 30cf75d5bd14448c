//! The snapshot as drift stores it: one `kind name<TAB>hash` line per object, sorted, where the
//! hash is the first 16 hex digits of the SHA-256 of the object's canonical parts (`part: value`
//! lines, sorted by part). Enough to name each object added, removed or changed, at about 40
//! bytes an object, and cheap to make: on PostgreSQL the server builds the whole text
//! ([`super::postgres::objects_sql`]), so a run pulls no definitions at all; on CockroachDB it
//! is made here from the read [`Snapshot`] with the same formula.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Change, Snapshot};

/// How many hex digits of an object's SHA-256 are kept: 64 bits, ample to tell a changed
/// object from an unchanged one, and a quarter of the full digest's space on the lease row.
pub const HASH_DIGITS: usize = 16;

/// Per-object hashes: `kind name` → hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    hashes: BTreeMap<(String, String), String>,
}

impl Objects {
    /// The per-object hashes of `snapshot`.
    pub fn of(snapshot: &Snapshot) -> Objects {
        let hashes = snapshot
            .objects
            .iter()
            .map(|(key, parts)| {
                let mut h = Sha256::new();
                for (part, value) in parts {
                    h.update(part.as_bytes());
                    h.update(b": ");
                    h.update(value.as_bytes());
                    h.update(b"\n");
                }
                (key.clone(), hex(&h.finalize())[..HASH_DIGITS].to_string())
            })
            .collect();
        Objects { hashes }
    }

    /// Read back from [`Objects::text`]; a line it cannot read is skipped (it then shows up
    /// as a difference, not as an error).
    pub fn parse(text: &str) -> Objects {
        let hashes = text
            .lines()
            .filter_map(|line| {
                let (object, hash) = line.rsplit_once('\t')?;
                let (kind, name) = split_object(object)?;
                Some(((kind, name), hash.to_string()))
            })
            .collect();
        Objects { hashes }
    }

    /// The stored form: `kind name<TAB>hash` lines, sorted by kind then name (bytewise).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for ((kind, name), hash) in &self.hashes {
            out.push_str(&format!("{kind} {name}\t{hash}\n"));
        }
        out.pop();
        out
    }

    /// Each object added, removed or changed from `self` to `live`. The hashes do not say
    /// which part of a changed object differs: `schema` prints its current form.
    pub fn diff(&self, live: &Objects) -> Vec<Change> {
        let mut out = Vec::new();
        let keys: std::collections::BTreeSet<_> =
            self.hashes.keys().chain(live.hashes.keys()).collect();
        for key in keys {
            let (kind, name) = (key.0.clone(), key.1.clone());
            match (self.hashes.get(key), live.hashes.get(key)) {
                (None, Some(_)) => out.push(Change::Added { kind, name }),
                (Some(_), None) => out.push(Change::Removed { kind, name }),
                (Some(a), Some(b)) if a != b => out.push(Change::Changed {
                    kind,
                    name,
                    parts: Vec::new(),
                }),
                _ => {}
            }
        }
        out
    }
}

/// The SHA-256 of a stored text, in hex: the whole snapshot's hash.
pub fn text_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `kind name` back into its two halves: kinds are the known words (some of two words, like
/// `materialized view`), so the split is at the end of the longest kind that prefixes it.
fn split_object(object: &str) -> Option<(String, String)> {
    const TWO_WORD: [&str; 2] = ["materialized view", "foreign table"];
    let kind_len = TWO_WORD
        .iter()
        .find(|k| object.starts_with(&format!("{k} ")))
        .map(|k| k.len())
        .or_else(|| object.find(' '))?;
    let (kind, name) = object.split_at(kind_len);
    Some((kind.to_string(), name.get(1..)?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(default: &str) -> Snapshot {
        let mut s = Snapshot::default();
        s.insert(
            "table",
            "public.t",
            [
                ("column a".into(), format!("integer default {default}")),
                ("column b".into(), "text".into()),
            ],
        );
        s.insert(
            "materialized view",
            "public.m",
            [("definition".into(), "SELECT 1".into())],
        );
        s
    }

    #[test]
    fn text_reads_back_and_names_changes_by_object() {
        let a = Objects::of(&snapshot("1"));
        assert_eq!(Objects::parse(&a.text()), a);
        assert!(a.text().contains("materialized view public.m\t"));
        let mut live = snapshot("2");
        live.insert("index", "public.i", [("definition".into(), "x".into())]);
        let changes: Vec<String> = a
            .diff(&Objects::of(&live))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(changes, ["added index public.i", "changed table public.t"]);
        assert!(a.diff(&a).is_empty());
        assert_eq!(text_hash(&a.text()).len(), 64);
    }

    #[test]
    fn the_object_hash_is_of_its_sorted_canonical_parts() {
        let s = snapshot("1");
        let h = Sha256::digest(b"column a: integer default 1\ncolumn b: text\n");
        let want = &hex(&h)[..HASH_DIGITS];
        assert!(
            Objects::of(&s)
                .text()
                .contains(&format!("table public.t\t{want}"))
        );
    }
}

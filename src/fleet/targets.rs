//! A fleet's targets: lines of a file or rows of a query, each a full URL or a NAME put into
//! `DATABASE_URL` (at `{target}`, in the database path or in `options`; else as the database
//! name). Names are checked so that none can change the URL's meaning; duplicates are refused
//! naming both places; a target is shown by a name that never holds a password.

use std::collections::HashMap;

use crate::connect::DbUrl;
use crate::error::{Error, Result};

/// The placeholder in `DATABASE_URL`.
pub(crate) const PLACEHOLDER: &str = "{target}";

/// One target: its display name (the `target` of its events) and the URL its run uses.
#[derive(Clone)]
pub struct Target {
    name: String,
    url: String,
}

impl Target {
    /// The display name: the NAME, or `host:port/db` of a URL target (never user or password).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL this target's run connects to (it may hold a password: never log it).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Whether `name` is a NAME: `^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$` (nothing that could end a
/// path, start a query, quote, or split `options`).
pub(crate) fn is_name(name: &str) -> bool {
    let b = name.as_bytes();
    let ok = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    (1..=63).contains(&b.len()) && ok(&b[0]) && b[1..].iter().all(|c| ok(c) || *c == b'-')
}

/// Whether `entry` is a full URL rather than a NAME.
fn is_url(entry: &str) -> bool {
    let lower = entry.get(..13).unwrap_or(entry).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Where a NAME goes in `DATABASE_URL`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// `DATABASE_URL`, `%7Btarget%7D` spelt `{target}`; `None`: unset (URL targets only).
    url: Option<String>,
    /// Whether the URL holds `{target}` (else a NAME replaces the database name).
    placeholder: bool,
}

fn bad_url(message: &str) -> Error {
    Error::Config {
        name: "DATABASE_URL".into(),
        message: message.into(),
    }
}

/// `url` split into the part before the path, the path and the query.
fn split_url(url: &str) -> (&str, &str, Option<&str>) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let start = base.find("://").map_or(0, |i| i + 3);
    match base[start..].find('/') {
        Some(i) => (&base[..start + i], &base[start + i + 1..], query),
        None => (base, "", query),
    }
}

impl Template {
    /// Checks where `DATABASE_URL` holds `{target}`: only in the database path or the value of
    /// `options` (never in the user, password, host or another key).
    pub(crate) fn new(url: Option<&str>) -> Result<Template> {
        let Some(url) = url else {
            return Ok(Template {
                url: None,
                placeholder: false,
            });
        };
        let url = url.trim().replace("%7Btarget%7D", PLACEHOLDER);
        let url = url.replace("%7btarget%7d", PLACEHOLDER);
        let (authority, _, query) = split_url(&url);
        let misplaced = authority.contains(PLACEHOLDER)
            || query
                .unwrap_or("")
                .split('&')
                .any(|pair| pair.contains(PLACEHOLDER) && !pair.starts_with("options="));
        if misplaced {
            return Err(bad_url(
                "{target} may stand only in the database name or in options \
                 (options=-c search_path={target})",
            ));
        }
        let placeholder = url.contains(PLACEHOLDER);
        let t = Template {
            url: Some(url),
            placeholder,
        };
        // A NAME must make a valid URL: say so once, naming DATABASE_URL.
        DbUrl::parse(&t.url_for("t")?)?;
        Ok(t)
    }

    /// The URL of target NAME `name` (already checked with [`is_name`]).
    pub(crate) fn url_for(&self, name: &str) -> Result<String> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| bad_url("not set: a target given by NAME is put into DATABASE_URL"))?;
        if self.placeholder {
            return Ok(url.replace(PLACEHOLDER, name));
        }
        let (base, _, query) = split_url(url);
        Ok(match query {
            Some(q) => format!("{base}/{name}?{q}"),
            None => format!("{base}/{name}"),
        })
    }

    /// `DATABASE_URL` with `{target}` taken out, for the targets query: a database path
    /// holding it is dropped, and so is the `-c ...{target}` setting of `options` (the whole
    /// `options` when nothing else is left).
    pub(crate) fn without_placeholder(&self) -> Result<String> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| bad_url("not set: MIGRATE_TARGETS_QUERY runs on it"))?;
        let (base, path, query) = split_url(url);
        let mut out = base.to_string();
        if !path.contains(PLACEHOLDER) {
            out.push('/');
            out.push_str(path);
        }
        let pairs: Vec<String> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| match p.strip_prefix("options=") {
                Some(v) if v.contains(PLACEHOLDER) => {
                    let kept = options_without_placeholder(v);
                    (!kept.is_empty()).then(|| format!("options={kept}"))
                }
                _ => Some(p.to_string()),
            })
            .collect();
        if !pairs.is_empty() {
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
        Ok(out)
    }
}

/// An `options` value (percent-encoded as in the URL) without its settings that hold
/// `{target}`: `-c name=value` pairs and `-cname=value` words.
fn options_without_placeholder(value: &str) -> String {
    let decoded = value
        .replace("%20", " ")
        .replace("%3D", "=")
        .replace("%3d", "=");
    let words: Vec<&str> = decoded.split_whitespace().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w == "-c" && words.get(i + 1).is_some_and(|n| n.contains(PLACEHOLDER)) {
            i += 2;
            continue;
        }
        if !w.contains(PLACEHOLDER) {
            kept.push(w);
        }
        i += 1;
    }
    kept.join("%20")
}

/// Where an entry came from, for messages: `FILE line N` or `MIGRATE_TARGETS_QUERY row N`.
pub(crate) struct Origin<'a> {
    /// The file's path, or `MIGRATE_TARGETS_QUERY`.
    pub source: &'a str,
    /// `line` or `row`.
    pub unit: &'a str,
}

impl Origin<'_> {
    fn at(&self, n: usize) -> String {
        format!("{} {} {n}", self.source, self.unit)
    }
}

/// The target of one entry (trimmed, non-empty), found at `n`.
fn target_of(entry: &str, n: usize, origin: &Origin<'_>, template: &Template) -> Result<Target> {
    let refuse = |message: String| Error::Config {
        name: origin.at(n),
        message,
    };
    if is_url(entry) {
        let url = DbUrl::parse(entry).map_err(|e| refuse(format!("not a valid URL: {e}")))?;
        let hosts: Vec<String> = url.hosts().iter().map(|h| h.to_string()).collect();
        let name = format!("{}/{}", hosts.join(","), url.dbname().unwrap_or(""));
        return Ok(Target {
            name,
            url: entry.to_string(),
        });
    }
    if !is_name(entry) {
        return Err(refuse(format!(
            "{entry:?} is not a target: a NAME is 1 to 63 of A-Z a-z 0-9 _ - (not starting \
             with -), or give a full postgresql:// URL"
        )));
    }
    let url = template.url_for(entry).map_err(|e| refuse(e.to_string()))?;
    Ok(Target {
        name: entry.to_string(),
        url,
    })
}

/// The targets of `entries` (each with its line or row number, already trimmed and without
/// blanks or comments), in order; a bad entry or a duplicate is an error naming where.
pub(crate) fn parse(
    entries: impl IntoIterator<Item = (usize, String)>,
    origin: &Origin<'_>,
    template: &Template,
) -> Result<Vec<Target>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (n, entry) in entries {
        let target = target_of(&entry, n, origin, template)?;
        // Unquoted schema names fold to lower case: `Acme` and `acme` are one schema.
        if let Some(first) = seen.insert(target.name.to_lowercase(), n) {
            return Err(Error::Config {
                name: format!("{} {}s {first} and {n}", origin.source, origin.unit),
                message: format!("target {} is given twice", target.name),
            });
        }
        out.push(target);
    }
    Ok(out)
}

/// The entries of a targets file: trimmed lines with their numbers (from 1), blank lines and
/// `#` comments skipped.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| (n, l.to_string()))
}

//! Which connections one run may hand to the next: two URLs that differ only in the
//! `search_path` their `options` carry (`options=-c search_path=...`) open the same kind of
//! session, so a finished run's connection can serve the next after a reset. [`reuse_key`]
//! gives the part of the URL such connections share, and the raw `search_path` value.

use super::DbUrl;

/// Splits a libpq `options` string into words: whitespace separates, a backslash escapes the
/// next character (libpq's rule for `options`).
fn words(options: &str) -> Vec<String> {
    let (mut out, mut word, mut escaped) = (Vec::new(), String::new(), false);
    for c in options.chars() {
        match c {
            _ if escaped => {
                word.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The `search_path` set by one `-c search_path=V` (or `-csearch_path=V`,
/// `--search_path=V`) among `words`, and the other words; `None` unless exactly one is there.
fn take_search_path(words: Vec<String>) -> Option<(String, Vec<String>)> {
    let (mut found, mut rest) = (Vec::new(), Vec::new());
    let mut it = words.into_iter().peekable();
    while let Some(w) = it.next() {
        let setting = match w.as_str() {
            "-c" => match it.peek() {
                Some(next) if next.starts_with("search_path=") => it.next(),
                _ => None,
            },
            s if s.starts_with("-csearch_path=") => Some(s[2..].to_string()),
            s if s.starts_with("--search_path=") => Some(s[2..].to_string()),
            _ => None,
        };
        match setting {
            Some(s) => found.push(s["search_path=".len()..].to_string()),
            None => rest.push(w),
        }
    }
    (found.len() == 1).then(|| (found.remove(0), rest))
}

impl DbUrl {
    /// The `search_path` this URL's `options` set (once), raw; `None` when they set none.
    pub(crate) fn search_path(&self) -> Option<String> {
        let options = self.parsed.options.as_deref()?;
        take_search_path(words(options)).map(|(search_path, _)| search_path)
    }

    /// `(key, search_path)` when this URL's `options` set `search_path` (once): connections of
    /// URLs with the same key differ only in that value, so one can serve another once its
    /// session is reset. `None`: the URL sets no `search_path` (not reused). The key holds the
    /// password: never log it.
    pub(crate) fn reuse_key(&self) -> Option<(String, String)> {
        let p = &self.parsed;
        let (search_path, rest) = take_search_path(words(p.options.as_deref()?))?;
        let hosts: Vec<String> = p.hosts.iter().map(ToString::to_string).collect();
        let key = format!(
            "{:?}\0{:?}\0{hosts:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{rest:?}\0{}\0{:?}",
            p.user,
            p.password,
            p.dbname,
            p.sslmode,
            p.sslrootcert,
            p.sslcert,
            p.sslkey,
            p.application_name,
            p.connect_timeout,
        );
        Some((key, search_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> Option<(String, String)> {
        DbUrl::parse(url).unwrap().reuse_key()
    }

    #[test]
    fn urls_differing_only_in_search_path_share_a_key() {
        let a = key("postgres://u:p@h:5432/d?options=-c%20search_path%3Dt1").unwrap();
        let b = key("postgres://u:p@h:5432/d?options=-c%20search_path%3DT2,public").unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!((a.1.as_str(), b.1.as_str()), ("t1", "T2,public"));
        let c = key("postgres://u:p@h:5432/d?options=-csearch_path%3Da\\%20b").unwrap();
        assert_eq!(c.1, "a b");
        assert_eq!(c.0, a.0);
    }

    #[test]
    fn anything_else_differing_is_another_key() {
        let a = key("postgres://u:p@h:5432/d?options=-c%20search_path%3Dt1").unwrap();
        for other in [
            "postgres://u:p@h:5432/e?options=-c%20search_path%3Dt1",
            "postgres://v:p@h:5432/d?options=-c%20search_path%3Dt1",
            "postgres://u:q@h:5432/d?options=-c%20search_path%3Dt1",
            "postgres://u:p@h:5433/d?options=-c%20search_path%3Dt1",
            "postgres://u:p@h:5432/d?options=-c%20search_path%3Dt1%20-c%20work_mem%3D1MB",
            "postgres://u:p@h:5432/d?options=-c%20search_path%3Dt1&sslmode=disable",
            "postgres://u:p@h:5432/d?options=-c%20search_path%3Dt1&application_name=x",
        ] {
            assert_ne!(key(other).unwrap().0, a.0, "{other}");
        }
        assert!(key("postgres://u:p@h:5432/d").is_none());
        assert!(key("postgres://u@h/d?options=-c%20work_mem%3D1MB").is_none());
        let twice = "postgres://u@h/d?options=-c%20search_path%3Da%20-c%20search_path%3Db";
        assert!(key(twice).is_none());
    }
}

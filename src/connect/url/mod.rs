//! Parsing DATABASE_URL ourselves: tokio-postgres's own parser rejects the keys libpq users
//! rely on (`sslrootcert`, `sslcert`, `sslkey`, `verify-ca`, `verify-full`), so the URL is read
//! here, once, into plain values; `tls.rs` and `connect.rs` turn those into live configs.
//!
//! Errors name the part at fault and never echo the password (nor the value of a key we do not
//! know, which could be a password passed as `?password=`).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error as ConnectError;

mod host;
mod scrub;

pub use host::Host;
use host::parse_host;
use scrub::scrub_parse_error;

/// The port CockroachDB listens on, used when the URL names none.
pub const DEFAULT_PORT: u16 = 26257;

/// The `application_name` sent when the URL sets none.
pub const DEFAULT_APPLICATION_NAME: &str = "crdb-migrate";

/// The per-attempt `connect_timeout` when the URL sets none (libpq has no default; an init
/// container must never hang on a server that accepts and stays silent).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The query parameters DATABASE_URL may carry; anything else is an error.
pub const KNOWN_PARAMS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "options",
    "application_name",
    "connect_timeout",
];

/// How much TLS to insist on, with libpq's names and meanings.
///
/// The default is [`SslMode::Prefer`], as in libpq: try TLS without verifying the server, fall
/// back to plain text when the server refuses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it (not verified), else plain text.
    #[default]
    Prefer,
    /// TLS, encrypted but not verified (unless `sslrootcert` is given: then, as libpq does, the
    /// chain is verified as with `verify-ca`).
    Require,
    /// TLS, the server's certificate chain verified against `sslrootcert` (no host name check).
    VerifyCa,
    /// TLS, the chain verified (against `sslrootcert`, or the system roots) and the host name
    /// checked against the certificate.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// DATABASE_URL, parsed. No `Debug`: it holds the password.
#[derive(Clone)]
pub(crate) struct ParsedUrl {
    pub user: Option<String>,
    pub password: Option<String>,
    pub hosts: Vec<Host>,
    pub dbname: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub options: Option<String>,
    pub application_name: String,
    /// `None` when the URL says `connect_timeout=0` (libpq: wait indefinitely; we are still
    /// bounded by the overall wait timeout).
    pub connect_timeout: Option<Duration>,
}

fn config_err(param: &str, message: impl Into<String>) -> ConnectError {
    ConnectError::Url {
        param: param.into(),
        message: message.into(),
    }
}

/// Decodes `%XX` escapes (a `+` stays a `+`, as in libpq). A `%` not followed by two hex
/// digits is refused (the crate would pass it through). The error never shows the input.
pub(crate) fn percent_decode(s: &str, param: &str) -> Result<String, ConnectError> {
    let bytes = s.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(config_err(param, "bad percent-encoding (expected %XX)"));
    }
    let s = percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| config_err(param, "percent-decodes to bytes that are not UTF-8"))?;
    if s.contains('\0') {
        return Err(config_err(param, "contains a NUL character"));
    }
    Ok(s.into_owned())
}

fn parse_connect_timeout(value: &str) -> Result<Option<Duration>, ConnectError> {
    let secs: u64 = value.trim().parse().map_err(|_| {
        config_err(
            "connect_timeout",
            format!("{value:?} is not a whole number of seconds"),
        )
    })?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Parses `postgresql://user:password@host:port,host2:port2/db?key=value&...`.
pub(crate) fn parse(url: &str) -> Result<ParsedUrl, ConnectError> {
    parse_unscrubbed(url).map_err(|e| scrub_parse_error(url, e))
}

fn parse_unscrubbed(url: &str) -> Result<ParsedUrl, ConnectError> {
    let url = url.trim();
    let rest = ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|p| p.eq_ignore_ascii_case(scheme))
                .map(|_| &url[scheme.len()..])
        })
        .ok_or_else(|| config_err("url", "must start with postgresql:// or postgres://"))?;

    // Fragments have no meaning here; refuse rather than silently drop part of the URL.
    // (A literal '#' in a password must be percent-encoded as %23, as in any URL.)
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    if rest.contains('#') || query.is_some_and(|q| q.contains('#')) {
        return Err(config_err(
            "url",
            "contains '#' (percent-encode it as %23, e.g. in the password)",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };

    // The last '@' ends the user info, so an unencoded '@' in a password still works.
    let (userinfo, hostlist) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = parse_userinfo(userinfo)?;

    if hostlist.is_empty() {
        return Err(config_err(
            "host",
            "missing (e.g. postgresql://user@host:26257/db)",
        ));
    }
    let hosts = hostlist
        .split(',')
        .map(parse_host)
        .collect::<Result<Vec<_>, _>>()?;

    let dbname = parse_dbname(path)?;

    let mut parsed = ParsedUrl {
        user,
        password,
        hosts,
        dbname,
        sslmode: SslMode::default(),
        sslrootcert: None,
        sslcert: None,
        sslkey: None,
        options: None,
        application_name: DEFAULT_APPLICATION_NAME.into(),
        connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
    };

    apply_query(&mut parsed, query.unwrap_or(""))?;
    Ok(parsed)
}

/// The user and password of `user[:password]`, percent-decoded.
fn parse_userinfo(
    userinfo: Option<&str>,
) -> Result<(Option<String>, Option<String>), ConnectError> {
    let Some(ui) = userinfo else {
        return Ok((None, None));
    };
    let (u, p) = match ui.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (ui, None),
    };
    let user = percent_decode(u, "user")?;
    let password = p.map(|p| percent_decode(p, "password")).transpose()?;
    Ok(((!user.is_empty()).then_some(user), password))
}

/// The database name of the URL's path, percent-decoded.
fn parse_dbname(path: Option<&str>) -> Result<Option<String>, ConnectError> {
    match path {
        None | Some("") => Ok(None),
        Some(p) => {
            let db = percent_decode(p, "dbname")?;
            if db.contains('/') {
                return Err(config_err(
                    "dbname",
                    "contains '/' (percent-encode it as %2F; an unencoded '/' in the password \
                     also cuts the URL in the wrong place)",
                ));
            }
            Ok(Some(db))
        }
    }
}

/// Applies the query string's `key=value` pairs; an unknown key is an error naming the key.
fn apply_query(parsed: &mut ParsedUrl, query: &str) -> Result<(), ConnectError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k, "url")?;
        if !KNOWN_PARAMS.contains(&key.as_str()) {
            // Name the key, never its value: `?password=...` must not leak.
            return Err(config_err(
                &key,
                format!("unknown parameter (supported: {})", KNOWN_PARAMS.join(", ")),
            ));
        }
        let value = percent_decode(v, &key)?;
        let path = || -> Result<Option<PathBuf>, ConnectError> {
            if value.is_empty() {
                Err(config_err(&key, "empty path"))
            } else {
                Ok(Some(PathBuf::from(&value)))
            }
        };
        match key.as_str() {
            "sslmode" => parsed.sslmode = SslMode::parse(&value).ok_or_else(|| {
                config_err(
                    "sslmode",
                    format!(
                        "{value:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ),
                )
            })?,
            "sslrootcert" => parsed.sslrootcert = path()?,
            "sslcert" => parsed.sslcert = path()?,
            "sslkey" => parsed.sslkey = path()?,
            "options" => parsed.options = Some(value),
            "application_name" => parsed.application_name = value,
            "connect_timeout" => parsed.connect_timeout = parse_connect_timeout(&value)?,
            _ => unreachable!("checked against KNOWN_PARAMS above"),
        }
    }
    Ok(())
}

impl ParsedUrl {
    /// The URL rebuilt for logs: the password replaced by `***`, only known keys.
    pub fn redacted(&self) -> String {
        let mut s = String::from("postgresql://");
        if let Some(u) = &self.user {
            s.push_str(u);
        }
        if self.password.is_some() {
            s.push_str(":***");
        }
        if self.user.is_some() || self.password.is_some() {
            s.push('@');
        }
        let hosts: Vec<String> = self.hosts.iter().map(Host::to_string).collect();
        s.push_str(&hosts.join(","));
        s.push('/');
        if let Some(db) = &self.dbname {
            s.push_str(db);
        }
        let mut q = vec![format!("sslmode={}", self.sslmode.as_str())];
        for (k, v) in [
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", v.display()));
            }
        }
        if let Some(o) = &self.options {
            q.push(format!("options={o}"));
        }
        q.push(format!("application_name={}", self.application_name));
        q.push(format!(
            "connect_timeout={}",
            self.connect_timeout.map_or(0, |d| d.as_secs())
        ));
        s.push('?');
        s.push_str(&q.join("&"));
        s
    }
}

#[cfg(test)]
mod tests;

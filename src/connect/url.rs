//! Parsing DATABASE_URL ourselves: tokio-postgres's own parser rejects the keys libpq users
//! rely on (`sslrootcert`, `sslcert`, `sslkey`, `verify-ca`, `verify-full`), so the URL is read
//! here, once, into plain values; `tls.rs` and `connect.rs` turn those into live configs.
//!
//! Errors name the part at fault and never echo the password (nor the value of a key we do not
//! know, which could be a password passed as `?password=`).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error as ConnectError;

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

/// One entry of the host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address (IPv6 without brackets) and a port.
    Tcp {
        /// Name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix-domain socket directory (a percent-encoded absolute path in the URL).
    Unix {
        /// The directory holding `.s.PGSQL.<port>`.
        dir: PathBuf,
        /// Port (names the socket file).
        port: u16,
    },
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Host::Tcp { host, port } => write!(f, "{host}:{port}"),
            Host::Unix { dir, port } => write!(f, "{}:{port}", dir.display()),
        }
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

/// Decodes `%XX` escapes (a `+` stays a `+`, as in libpq). The error never shows the input.
pub(crate) fn percent_decode(s: &str, param: &str) -> Result<String, ConnectError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| config_err(param, "bad percent-encoding (expected %XX)"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out)
        .map_err(|_| config_err(param, "percent-decodes to bytes that are not UTF-8"))?;
    if s.contains('\0') {
        return Err(config_err(param, "contains a NUL character"));
    }
    Ok(s)
}

fn parse_port(s: &str) -> Result<u16, ConnectError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(config_err(
            "port",
            "is not a number from 1 to 65535 (an unencoded '/', '?' or '@' in the password also \
             cuts the URL in the wrong place: percent-encode them)",
        )),
    }
}

fn parse_host(spec: &str) -> Result<Host, ConnectError> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| config_err("host", "an IPv6 address misses its ']'"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(config_err(
                "host",
                "the address in brackets is not an IPv6 address",
            ));
        }
        let port = match after {
            "" => DEFAULT_PORT,
            _ => parse_port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| config_err("host", "expected ':' and a port after ']'"))?,
            )?,
        };
        return Ok(Host::Tcp {
            host: addr.to_string(),
            port,
        });
    }
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p)?),
        None => (spec, DEFAULT_PORT),
    };
    let host = percent_decode(host, "host")?;
    if host.is_empty() {
        return Err(config_err("host", "empty host name"));
    }
    if host.contains(':') {
        return Err(config_err(
            "host",
            "write an IPv6 address in brackets, e.g. [::1]:26257",
        ));
    }
    if host.starts_with('/') {
        return Ok(Host::Unix {
            dir: PathBuf::from(host),
            port,
        });
    }
    Ok(Host::Tcp { host, port })
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

/// Everything that might be part of the password, longest first: the text between the first
/// ':' of the user info and the last '@' of the URL, whole and cut at every character where a
/// parser may have split it. A URL that does not parse may have been cut inside the password.
fn password_fragments(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let Some(at) = rest.rfind('@') else {
        return Vec::new();
    };
    let Some((_, password)) = rest[..at].split_once(':') else {
        return Vec::new();
    };
    let mut frags: Vec<String> = password
        .split(|c: char| "/?&=@:#,[]".contains(c))
        .filter(|f| f.chars().count() >= 3)
        .map(str::to_string)
        .collect();
    frags.push(password.to_string());
    frags.retain(|f| !f.is_empty());
    frags.sort_by_key(|f| std::cmp::Reverse(f.len()));
    frags
}

/// Removes anything that may be a piece of the password from a parse error.
fn scrub_parse_error(url: &str, e: ConnectError) -> ConnectError {
    let frags = password_fragments(url);
    let scrub = |mut text: String| {
        for f in &frags {
            text = text.replace(f.as_str(), "***");
        }
        text
    };
    match e {
        ConnectError::Url { param, message } => ConnectError::Url {
            param: scrub(param),
            message: scrub(message),
        },
        other => other,
    }
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
mod tests {
    use super::*;

    fn err_param(url: &str) -> (String, String) {
        match parse(url) {
            Err(ConnectError::Url { param, message }) => (param, message),
            Err(other) => panic!("{url}: unexpected error {other:?}"),
            Ok(_) => panic!("{url}: parsed but should not"),
        }
    }

    #[test]
    fn minimal_url_gets_defaults() {
        let p = parse("postgresql://root@db").unwrap();
        assert_eq!(p.user.as_deref(), Some("root"));
        assert_eq!(p.password, None);
        assert_eq!(
            p.hosts,
            vec![Host::Tcp {
                host: "db".into(),
                port: 26257
            }]
        );
        assert_eq!(p.dbname, None);
        assert_eq!(p.sslmode, SslMode::Prefer);
        assert_eq!(p.application_name, "crdb-migrate");
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(10)));
        assert!(p.options.is_none() && p.sslrootcert.is_none());
    }

    #[test]
    fn both_schemes_and_case() {
        assert!(parse("postgres://u@h/db").is_ok());
        assert!(parse("postgresql://u@h/db").is_ok());
        assert!(parse("PostgreSQL://u@h/db").is_ok());
        assert_eq!(err_param("mysql://u@h/db").0, "url");
        assert_eq!(err_param("h:26257/db").0, "url");
    }

    #[test]
    fn every_known_key() {
        let p = parse(
            "postgresql://u:pw@h:1234/app?sslmode=verify-full&sslrootcert=/c/ca.crt\
             &sslcert=/c/client.u.crt&sslkey=/c/client.u.key&options=--cluster%3Drouting-id\
             &application_name=my%20app&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(p.sslmode, SslMode::VerifyFull);
        assert_eq!(p.sslrootcert, Some(PathBuf::from("/c/ca.crt")));
        assert_eq!(p.sslcert, Some(PathBuf::from("/c/client.u.crt")));
        assert_eq!(p.sslkey, Some(PathBuf::from("/c/client.u.key")));
        assert_eq!(p.options.as_deref(), Some("--cluster=routing-id"));
        assert_eq!(p.application_name, "my app");
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(p.dbname.as_deref(), Some("app"));
        assert_eq!(
            p.hosts,
            vec![Host::Tcp {
                host: "h".into(),
                port: 1234
            }]
        );
    }

    #[test]
    fn every_sslmode() {
        for (s, m) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(
                parse(&format!("postgres://h?sslmode={s}")).unwrap().sslmode,
                m
            );
            assert_eq!(m.as_str(), s);
        }
        let (param, message) = err_param("postgres://h?sslmode=allow");
        assert_eq!(param, "sslmode");
        assert!(message.contains("\"allow\""), "{message}");
    }

    #[test]
    fn connect_timeout_values() {
        assert_eq!(
            parse("postgres://h?connect_timeout=0")
                .unwrap()
                .connect_timeout,
            None
        );
        for bad in ["-1", "1.5", "10s", ""] {
            assert_eq!(
                err_param(&format!("postgres://h?connect_timeout={bad}")).0,
                "connect_timeout"
            );
        }
    }

    #[test]
    fn ipv6_and_host_lists() {
        let p = parse("postgresql://u@[::1]:5432,[fe80::1],db.example:26258,10.0.0.1/x").unwrap();
        assert_eq!(
            p.hosts,
            vec![
                Host::Tcp {
                    host: "::1".into(),
                    port: 5432
                },
                Host::Tcp {
                    host: "fe80::1".into(),
                    port: 26257
                },
                Host::Tcp {
                    host: "db.example".into(),
                    port: 26258
                },
                Host::Tcp {
                    host: "10.0.0.1".into(),
                    port: 26257
                },
            ]
        );
        assert_eq!(p.hosts[0].to_string(), "[::1]:5432");
        assert_eq!(err_param("postgres://[::1/x").0, "host");
        assert_eq!(err_param("postgres://[nothost]:1/x").0, "host");
        assert_eq!(err_param("postgres://::1/x").0, "host");
        assert_eq!(err_param("postgres://a,,b/x").0, "host");
        assert_eq!(err_param("postgres://u@/x").0, "host");
        assert_eq!(err_param("postgres://h:99999/x").0, "port");
        assert_eq!(err_param("postgres://h:0/x").0, "port");
    }

    #[test]
    fn unix_socket_host() {
        let p = parse("postgres://u@%2Ftmp%2Fpg:5433/db").unwrap();
        assert_eq!(
            p.hosts,
            vec![Host::Unix {
                dir: PathBuf::from("/tmp/pg"),
                port: 5433
            }]
        );
    }

    #[test]
    fn percent_decoding_user_password_db() {
        let p = parse("postgresql://us%40er:p%3Aa%2Fs%40s%25@h/my%20db").unwrap();
        assert_eq!(p.user.as_deref(), Some("us@er"));
        assert_eq!(p.password.as_deref(), Some("p:a/s@s%"));
        assert_eq!(p.dbname.as_deref(), Some("my db"));
        // An unencoded '@' in the password still works: the last '@' ends the user info.
        let p = parse("postgresql://u:p@ss@h/db").unwrap();
        assert_eq!(p.password.as_deref(), Some("p@ss"));
        // '+' is not a space.
        let p = parse("postgresql://u:a+b@h/db").unwrap();
        assert_eq!(p.password.as_deref(), Some("a+b"));
        // Empty password is kept as empty.
        let p = parse("postgresql://u:@h/db").unwrap();
        assert_eq!(p.password.as_deref(), Some(""));
    }

    #[test]
    fn bad_percent_encoding_names_part_without_value() {
        let (param, message) = err_param("postgresql://u:s3cr%ZZet@h/db");
        assert_eq!(param, "password");
        assert!(!message.contains("s3cr"), "{message}");
        assert_eq!(err_param("postgresql://u%ff@h/db").0, "user");
        assert_eq!(err_param("postgresql://u@h/d%2").0, "dbname");
        assert_eq!(err_param("postgresql://u@h/a%2Fb").0, "dbname");
        assert_eq!(err_param("postgresql://u@h/db?options=%0").0, "options");
    }

    #[test]
    fn unknown_key_is_named_and_value_not_echoed() {
        let (param, message) = err_param("postgresql://u@h/db?password=hunter2secret");
        assert_eq!(param, "password");
        assert!(!message.contains("hunter2secret"), "{message}");
        let (param, message) =
            err_param("postgresql://u@h/db?sslmode=require&target_session_attrs=any");
        assert_eq!(param, "target_session_attrs");
        assert!(message.contains("unknown parameter"), "{message}");
    }

    #[test]
    fn empty_paths_and_fragments_refused() {
        assert_eq!(err_param("postgres://h?sslrootcert=").0, "sslrootcert");
        assert_eq!(err_param("postgres://u:a#b@h/db").0, "url");
    }

    #[test]
    fn redacted_hides_password() {
        let p =
            parse("postgresql://u:topsecret@[::1]:5432,h2/db?sslmode=require&options=-c%20x%3D1")
                .unwrap();
        let r = p.redacted();
        assert!(!r.contains("topsecret"), "{r}");
        assert!(
            r.starts_with("postgresql://u:***@[::1]:5432,h2:26257/db?sslmode=require"),
            "{r}"
        );
        assert!(r.contains("options=-c x=1"), "{r}");
    }
}

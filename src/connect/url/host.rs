//! One entry of DATABASE_URL's host list: a TCP host and port (IPv6 in brackets) or a
//! Unix-socket directory, parsed and displayed.

use std::path::PathBuf;

use super::{ConnectError, DEFAULT_PORT, config_err, percent_decode};

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

pub(super) fn parse_port(s: &str) -> Result<u16, ConnectError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(config_err(
            "port",
            "is not a number from 1 to 65535 (an unencoded '/', '?' or '@' in the password also \
             cuts the URL in the wrong place: percent-encode them)",
        )),
    }
}

pub(super) fn parse_host(spec: &str) -> Result<Host, ConnectError> {
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

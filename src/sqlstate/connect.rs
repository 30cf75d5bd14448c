//! The connection-attempt verdict: transient (wait and retry) or permanent (stop now)? Decided
//! from SQLSTATE constants, the rustls error, and `std::io::ErrorKind` — never from message text.
//!
//! `facts` digs the structured causes out of a tokio-postgres error; `classify` is a pure
//! function of those facts, unit-tested below.

use std::error::Error as _;
use std::io;

use rustls::AlertDescription;
use tokio_postgres::error::SqlState;

/// What we know about one failed connection attempt.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The server's SQLSTATE, when it answered with an error.
    pub sqlstate: Option<SqlState>,
    /// The rustls error anywhere in the cause chain.
    pub tls_error: Option<rustls::Error>,
    /// The I/O error kind anywhere in the cause chain.
    pub io_kind: Option<io::ErrorKind>,
    /// The connection was closed under us (tokio-postgres `is_closed`).
    pub closed: bool,
    /// The sslmode demands TLS.
    pub tls_required: bool,
    /// The TLS handshake was started on this attempt.
    pub tls_started: bool,
}

/// The verdict on one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Retry after a delay: the server may be starting, draining or unreachable for now.
    Transient,
    /// Authentication was rejected (exit 21).
    Auth,
    /// TLS was rejected: a certificate failed verification, or the server refused TLS, or a
    /// secure server refused plain text (exit 21).
    Tls,
    /// The database does not exist (exit 20, unless we are to create it).
    NoDatabase,
    /// The server rejected a startup parameter such as `options` (exit 20).
    BadParameter,
}

/// Pulls the structured causes out of a tokio-postgres error.
pub fn facts(err: &tokio_postgres::Error, tls_required: bool, tls_started: bool) -> Facts {
    let mut f = Facts {
        sqlstate: err.code().cloned(),
        closed: err.is_closed(),
        tls_required,
        tls_started,
        ..Facts::default()
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            f.tls_error.get_or_insert_with(|| t.clone());
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            f.io_kind.get_or_insert(io.kind());
            // tokio-rustls wraps the rustls error inside the io::Error.
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                f.tls_error.get_or_insert_with(|| t.clone());
            }
        }
        cause = c.source();
    }
    f
}

/// TLS alerts a server sends when it rejects our certificate or our TLS parameters: retrying
/// with the same files cannot help.
fn alert_is_permanent(a: &AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::ProtocolVersion
            | AlertDescription::InsufficientSecurity
            | AlertDescription::DecryptError
    )
}

/// Decides whether a failure is worth waiting out.
///
/// Unknown server errors during connection are treated as transient: a CockroachDB node that is
/// still joining its cluster answers with assorted errors, and wrongly failing a Job for good is
/// worse than waiting until `MIGRATE_WAIT_TIMEOUT`.
pub fn classify(f: &Facts) -> Verdict {
    if let Some(code) = &f.sqlstate {
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            return Verdict::Auth;
        }
        // The probe reads `pg_catalog.pg_database`, which always exists on PostgreSQL; a
        // CockroachDB session whose database does not exist may answer that read with 42P01
        // ("relation \"pg_database\" does not exist", cockroachdb/cockroach#71495).
        if *code == SqlState::INVALID_CATALOG_NAME || *code == SqlState::UNDEFINED_TABLE {
            return Verdict::NoDatabase;
        }
        // CockroachDB's "server is not accepting clients" (a draining node) is sent as
        // 57P01 admin_shutdown, so no text matching is needed for it.
        if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            return Verdict::Transient;
        }
        // A secure CockroachDB node answers a plain-text startup with 08P01 ("node is running
        // secure mode, SSL connection required"): waiting will not change that.
        if *code == SqlState::PROTOCOL_VIOLATION && !f.tls_started {
            return Verdict::Tls;
        }
        let class = &code.code()[..2];
        if class == "08" {
            return Verdict::Transient;
        }
        // Only the startup packet and `SELECT version()` were sent: a data exception or an
        // access/syntax rule violation here comes from a startup parameter (`options`).
        if class == "22" || class == "42" {
            return Verdict::BadParameter;
        }
        return Verdict::Transient;
    }
    if let Some(t) = &f.tls_error {
        return match t {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType
            | rustls::Error::InvalidCertRevocationList(_)
            | rustls::Error::PeerIncompatible(_) => Verdict::Tls,
            rustls::Error::AlertReceived(a) if alert_is_permanent(a) => Verdict::Tls,
            // A handshake cut off, a decoding error from a half-read record: try again.
            _ => Verdict::Transient,
        };
    }
    if f.io_kind.is_some() || f.closed {
        // Refused, reset, aborted, timed out, unexpected EOF, DNS failure (io::Error of
        // "other"/uncategorised kind from the resolver), unreachable network: all may heal.
        return Verdict::Transient;
    }
    // No server error, no TLS error, no I/O error: tokio-postgres itself gave up on the
    // startup exchange. Either the server refused TLS that we require (the handshake never
    // started), or authentication could not proceed (a password the server asks for is
    // missing, an unsupported method, a SCRAM proof that does not verify).
    if f.tls_required && !f.tls_started {
        Verdict::Tls
    } else {
        Verdict::Auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError;

    fn code(c: SqlState) -> Facts {
        Facts {
            sqlstate: Some(c),
            ..Facts::default()
        }
    }

    #[test]
    fn auth_codes_are_permanent() {
        assert_eq!(classify(&code(SqlState::INVALID_PASSWORD)), Verdict::Auth);
        assert_eq!(
            classify(&code(SqlState::INVALID_AUTHORIZATION_SPECIFICATION)),
            Verdict::Auth
        );
        assert_eq!(
            classify(&code(SqlState::INSUFFICIENT_PRIVILEGE)),
            Verdict::Auth
        );
    }

    #[test]
    fn missing_database() {
        assert_eq!(
            classify(&code(SqlState::INVALID_CATALOG_NAME)),
            Verdict::NoDatabase
        );
        // CockroachDB's answer to the probe's catalog read in a database that is not there.
        assert_eq!(
            classify(&code(SqlState::UNDEFINED_TABLE)),
            Verdict::NoDatabase
        );
    }

    #[test]
    fn starting_draining_and_class_08_are_transient() {
        for c in [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CRASH_SHUTDOWN,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
            SqlState::INTERNAL_ERROR,
            SqlState::from_code("XXUUU"),
        ] {
            assert_eq!(classify(&code(c.clone())), Verdict::Transient, "{c:?}");
        }
    }

    #[test]
    fn protocol_violation_on_plain_text_means_tls_required() {
        assert_eq!(classify(&code(SqlState::PROTOCOL_VIOLATION)), Verdict::Tls);
        let f = Facts {
            tls_started: true,
            ..code(SqlState::PROTOCOL_VIOLATION)
        };
        assert_eq!(classify(&f), Verdict::Transient);
    }

    #[test]
    fn startup_parameter_errors() {
        assert_eq!(
            classify(&code(SqlState::UNDEFINED_OBJECT)),
            Verdict::BadParameter
        );
        assert_eq!(
            classify(&code(SqlState::INVALID_PARAMETER_VALUE)),
            Verdict::BadParameter
        );
    }

    #[test]
    fn certificate_failures_are_permanent() {
        for e in [
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            rustls::Error::InvalidCertificate(CertificateError::Expired),
            rustls::Error::NoCertificatesPresented,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        ] {
            let f = Facts {
                tls_error: Some(e.clone()),
                io_kind: Some(io::ErrorKind::InvalidData),
                tls_started: true,
                ..Facts::default()
            };
            assert_eq!(classify(&f), Verdict::Tls, "{e:?}");
        }
    }

    #[test]
    fn cut_off_handshake_is_transient() {
        let f = Facts {
            tls_error: Some(rustls::Error::AlertReceived(AlertDescription::CloseNotify)),
            tls_started: true,
            ..Facts::default()
        };
        assert_eq!(classify(&f), Verdict::Transient);
        let f = Facts {
            io_kind: Some(io::ErrorKind::UnexpectedEof),
            tls_started: true,
            tls_required: true,
            ..Facts::default()
        };
        assert_eq!(classify(&f), Verdict::Transient);
    }

    #[test]
    fn network_errors_are_transient() {
        for k in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::NotFound,
            io::ErrorKind::Other,
        ] {
            let f = Facts {
                io_kind: Some(k),
                tls_required: true,
                ..Facts::default()
            };
            assert_eq!(classify(&f), Verdict::Transient, "{k:?}");
        }
        let f = Facts {
            closed: true,
            ..Facts::default()
        };
        assert_eq!(classify(&f), Verdict::Transient);
    }

    #[test]
    fn opaque_client_side_refusals() {
        // sslmode=require, server answered 'N' to SSLRequest: the handshake never started.
        let f = Facts {
            tls_required: true,
            ..Facts::default()
        };
        assert_eq!(classify(&f), Verdict::Tls);
        // Password asked for but none given, unsupported method, bad SCRAM proof.
        assert_eq!(classify(&Facts::default()), Verdict::Auth);
        let f = Facts {
            tls_required: true,
            tls_started: true,
            ..Facts::default()
        };
        assert_eq!(classify(&f), Verdict::Auth);
    }
}

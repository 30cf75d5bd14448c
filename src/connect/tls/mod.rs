//! TLS with rustls and its `ring` provider: the client configuration for each sslmode, the
//! certificate and key files named by the URL (loaded once, at parse time, so a bad file is a
//! configuration error before any network traffic), and the connector handed to tokio-postgres.
//!
//! The provider is passed explicitly to every builder (`builder_with_provider`), so nothing
//! depends on a process-wide default provider being installed.
//!
//! X.509 v1 certificates (what `openssl x509 -req` writes without `-extfile`, as PostgreSQL's
//! documentation shows) are handled as libpq handles them where rustls/webpki allow it:
//! - a v1 *client* certificate works: the key is checked against the certificate by comparing
//!   the SubjectPublicKeyInfo read from the certificate ([`certificate_spki`], by x509-cert)
//!   with the one derived from the private key, instead of rustls's check, which parses the
//!   certificate with webpki and refuses anything but v3;
//! - a v1 *root* CA in `sslrootcert` works (webpki accepts v1 trust anchors);
//! - a v1 *server* certificate works with `prefer`/`require` without a root over TLS 1.3 (the
//!   handshake signature is checked against the certificate's public key), but `verify-ca` and
//!   `verify-full` refuse it with an error saying so: webpki verifies only v3 chains, and a v1
//!   certificate has no subjectAltName for the host-name check anyway.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

mod verify;
mod x509;

use verify::{EncryptOnly, WebPki};
use x509::certificate_spki;

use super::url::{ParsedUrl, SslMode};
use crate::error::Error as ConnectError;

fn config_err(param: &str, message: impl Into<String>) -> ConnectError {
    ConnectError::Url {
        param: param.into(),
        message: message.into(),
    }
}

/// The one crypto provider: `ring` (small, no C toolchain beyond cc, builds for musl/static).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_err(param: &str, path: &Path, e: pem::Error) -> ConnectError {
    let p = path.display();
    match e {
        pem::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            config_err(param, format!("{p}: file not found"))
        }
        pem::Error::Io(io) => config_err(param, format!("{p}: cannot read: {io}")),
        pem::Error::NoItemsFound => {
            config_err(param, format!("{p}: no PEM item of the expected kind"))
        }
        other => config_err(param, format!("{p}: malformed PEM: {other}")),
    }
}

/// Reads every certificate in a PEM file; at least one is required.
pub(crate) fn load_certs(
    param: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(param, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(param, path, e))?;
    if certs.is_empty() {
        return Err(config_err(
            param,
            format!("{}: no CERTIFICATE in the file", path.display()),
        ));
    }
    Ok(certs)
}

/// Reads a private key in PKCS#1 (`BEGIN RSA PRIVATE KEY`, what `cockroach cert` writes),
/// PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM, and loads it into the
/// provider, which must be able to sign with it. The error never includes key material.
pub(crate) fn load_key(
    path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<dyn SigningKey>, ConnectError> {
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => config_err(
            "sslkey",
            format!(
                "{}: no private key (PKCS#1, PKCS#8 or SEC1 PEM) in the file",
                path.display()
            ),
        ),
        other => pem_err("sslkey", path, other),
    })?;
    provider.key_provider.load_private_key(key).map_err(|e| {
        config_err(
            "sslkey",
            format!("{}: unusable private key: {e}", path.display()),
        )
    })
}

/// The client certificate chain of `sslcert` with the key of `sslkey`, after checking that the
/// key is the one the first (end-entity) certificate certifies.
///
/// The check compares public keys: the SubjectPublicKeyInfo in the certificate, read by
/// [`certificate_spki`] whatever the X.509 version, against the one the provider derives from
/// the private key. (rustls's own check parses the certificate with webpki, which refuses v1.)
/// A key whose public half the provider cannot derive is accepted unchecked, as rustls does.
fn client_auth(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, ConnectError> {
    let certs = load_certs("sslcert", cert_path)?;
    let key = load_key(key_path, provider)?;
    let cert_spki = certificate_spki(&certs[0]).map_err(|e| {
        config_err(
            "sslcert",
            format!(
                "{}: the first certificate is not a readable X.509 certificate: {e}",
                cert_path.display()
            ),
        )
    })?;
    if let Some(key_spki) = key.public_key()
        && key_spki.as_ref() != cert_spki.as_slice()
    {
        return Err(config_err(
            "sslkey",
            format!(
                "{}: does not match the certificate in sslcert ({}): its public key differs \
                 from the certificate's",
                key_path.display(),
                cert_path.display()
            ),
        ));
    }
    Ok(Arc::new(CertifiedKey::new(certs, key)))
}

fn roots_from(param: &str, path: &Path) -> Result<RootCertStore, ConnectError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(param, path)? {
        roots.add(cert).map_err(|e| {
            config_err(
                param,
                format!("{}: not a usable CA certificate: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

/// The operating system's trust store (honours `SSL_CERT_FILE` / `SSL_CERT_DIR`).
fn system_roots() -> Result<RootCertStore, ConnectError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(config_err(
            "sslrootcert",
            "not set, and no system CA certificates were found (set sslrootcert, or SSL_CERT_FILE)",
        ));
    }
    Ok(roots)
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, ConnectError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| config_err("sslrootcert", format!("cannot build a verifier: {e}")))
}

/// Builds the rustls client configuration for the URL, or `None` for `sslmode=disable`.
///
/// Every named file is loaded (and so checked) whatever the sslmode, so a typo in a path is
/// reported at once rather than the day someone tightens the sslmode.
pub(crate) fn client_config(url: &ParsedUrl) -> Result<Option<Arc<ClientConfig>>, ConnectError> {
    let provider = provider();
    let roots = url
        .sslrootcert
        .as_deref()
        .map(|p| roots_from("sslrootcert", p))
        .transpose()?;
    let client_auth = match (&url.sslcert, &url.sslkey) {
        (Some(cert), Some(key)) => Some(client_auth(cert, key, &provider)?),
        (Some(_), None) => return Err(config_err("sslkey", "required when sslcert is set")),
        (None, Some(_)) => return Err(config_err("sslcert", "required when sslkey is set")),
        (None, None) => None,
    };

    let verifier: Arc<dyn ServerCertVerifier> = match (url.sslmode, roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::Prefer, _) | (SslMode::Require, None) => Arc::new(EncryptOnly(provider.clone())),
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        (SslMode::Require | SslMode::VerifyCa, Some(roots)) => Arc::new(WebPki {
            inner: webpki_verifier(roots, &provider)?,
            check_name: false,
        }),
        (SslMode::VerifyCa, None) => {
            return Err(config_err(
                "sslrootcert",
                "required with sslmode=verify-ca (the CA to verify the server's chain against)",
            ));
        }
        (SslMode::VerifyFull, roots) => {
            let roots = match roots {
                Some(r) => r,
                None => system_roots()?,
            };
            Arc::new(WebPki {
                inner: webpki_verifier(roots, &provider)?,
                check_name: true,
            })
        }
    };

    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("sslmode", format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_auth {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// `verify-full` (`check_name`) and `verify-ca`: webpki's verifier, the chain must lead to a
/// trusted root, and with `check_name` the certificate must name the host.
///
/// The webpki verifier checks the chain first and the name last, so a `NotValidForName`
/// error means the chain itself was good: `verify-ca` accepts it.
///
/// webpki verifies only X.509 v3 certificates; a v1 server or intermediate certificate is
/// refused with an error that says so, rather than webpki's bare `UnsupportedCertVersion`.
/// tokio-postgres-rustls's connector plus one bit of knowledge: whether the TLS handshake was
/// started. When TLS is required and a connection fails before the handshake started, the
/// server refused TLS; tokio-postgres reports that as an opaque error, and this flag lets us
/// classify it without reading message text.
#[derive(Clone)]
pub(crate) struct TrackedTls {
    inner: MakeRustlsConnect,
    started: Arc<AtomicBool>,
}

impl TrackedTls {
    pub(crate) fn new(config: &Arc<ClientConfig>) -> (TrackedTls, Arc<AtomicBool>) {
        let started = Arc::new(AtomicBool::new(false));
        let tls = TrackedTls {
            inner: MakeRustlsConnect::new(ClientConfig::clone(config)),
            started: started.clone(),
        };
        (tls, started)
    }
}

impl<S> MakeTlsConnect<S> for TrackedTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = TrackedConnect<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let inner =
            <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.inner, hostname)?;
        Ok(TrackedConnect {
            inner,
            started: self.started.clone(),
        })
    }
}

/// See [`TrackedTls`].
pub(crate) struct TrackedConnect<T> {
    inner: T,
    started: Arc<AtomicBool>,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for TrackedConnect<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.started.store(true, Ordering::SeqCst);
        self.inner.connect(stream)
    }
}

#[cfg(test)]
mod tests;

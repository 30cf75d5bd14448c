//! TLS with rustls and its `ring` provider: the client configuration for each sslmode, the
//! certificate and key files named by the URL (loaded once, at parse time, so a bad file is a
//! configuration error before any network traffic), and the connector handed to tokio-postgres.
//!
//! The provider is passed explicitly to every builder (`builder_with_provider`), so nothing
//! depends on a process-wide default provider being installed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

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
/// PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`) PEM, and checks the provider
/// can sign with it. The error never includes key material.
pub(crate) fn load_key(
    path: &Path,
    provider: &CryptoProvider,
) -> Result<PrivateKeyDer<'static>, ConnectError> {
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
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            config_err(
                "sslkey",
                format!("{}: unusable private key: {e}", path.display()),
            )
        })?;
    Ok(key)
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
        (Some(cert), Some(key)) => Some((load_certs("sslcert", cert)?, load_key(key, &provider)?)),
        (Some(_), None) => return Err(config_err("sslkey", "required when sslcert is set")),
        (None, Some(_)) => return Err(config_err("sslcert", "required when sslkey is set")),
        (None, None) => None,
    };

    let verifier: Arc<dyn ServerCertVerifier> = match (url.sslmode, roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::Prefer, _) | (SslMode::Require, None) => Arc::new(EncryptOnly(provider.clone())),
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        (SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
            Arc::new(ChainOnly(webpki_verifier(roots, &provider)?))
        }
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
            webpki_verifier(roots, &provider)?
        }
    };

    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("sslmode", format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_auth {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
            config_err(
                "sslkey",
                format!("does not match the certificate in sslcert: {e}"),
            )
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
///
/// The webpki verifier checks the chain first and the name last, so a `NotValidForName`
/// error means the chain itself was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a root: encrypt, accept any certificate (as libpq does), but
/// still check the handshake signatures with the provider's algorithms, so the peer must hold
/// the key of the certificate it shows.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

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
mod tests {
    use super::*;
    use std::io::Write;

    fn url(s: &str) -> ParsedUrl {
        super::super::url::parse(s).unwrap()
    }

    fn param_of(r: Result<Option<Arc<ClientConfig>>, ConnectError>) -> String {
        match r {
            Err(ConnectError::Url { param, .. }) => param,
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn disable_needs_no_tls_config() {
        assert!(
            client_config(&url("postgres://h?sslmode=disable"))
                .unwrap()
                .is_none()
        );
        assert!(
            client_config(&url("postgres://h?sslmode=prefer"))
                .unwrap()
                .is_some()
        );
        assert!(
            client_config(&url("postgres://h?sslmode=require"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn missing_files_name_the_parameter() {
        for key in ["sslrootcert", "sslcert", "sslkey"] {
            let other = match key {
                "sslcert" => "&sslkey=/nonexistent/k",
                "sslkey" => "&sslcert=/nonexistent/c",
                _ => "",
            };
            let u = url(&format!(
                "postgres://h?sslmode=verify-full&{key}=/nonexistent/{key}{other}"
            ));
            let param = param_of(client_config(&u));
            // sslcert is loaded before sslkey, so a missing cert is reported first.
            let expected = if key == "sslkey" { "sslcert" } else { key };
            assert_eq!(param, expected);
        }
    }

    #[test]
    fn cert_without_key_and_verify_ca_without_root() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::File::create(&junk)
            .unwrap()
            .write_all(b"not pem at all\n")
            .unwrap();
        let j = junk.display();
        assert_eq!(
            param_of(client_config(&url(&format!("postgres://h?sslcert={j}")))),
            "sslkey"
        );
        assert_eq!(
            param_of(client_config(&url(&format!("postgres://h?sslkey={j}")))),
            "sslcert"
        );
        assert_eq!(
            param_of(client_config(&url("postgres://h?sslmode=verify-ca"))),
            "sslrootcert"
        );
        assert_eq!(
            param_of(client_config(&url(&format!(
                "postgres://h?sslrootcert={j}"
            )))),
            "sslrootcert"
        );
    }

    #[test]
    fn malformed_key_is_a_config_error_on_sslkey() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("bad.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_key(&key, &provider()).unwrap_err();
        match err {
            ConnectError::Url { param, .. } => assert_eq!(param, "sslkey"),
            e => panic!("{e:?}"),
        }
    }
}

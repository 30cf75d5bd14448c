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
//!   the SubjectPublicKeyInfo read from the certificate ([`certificate_spki`], a small DER walk)
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
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
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
        && key_spki.as_ref() != cert_spki
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

// ---------------------------------------------------------------------------------------------
// A minimal DER reader: just enough of X.509 to find the version and the public key
// ---------------------------------------------------------------------------------------------

const DER_INTEGER: u8 = 0x02;
const DER_SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT`, constructed: the `version` field of a TBSCertificate.
const DER_VERSION_TAG: u8 = 0xa0;

/// Why [`certificate_spki`] or [`certificate_version`] could not read a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(&'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed DER: {}", self.0)
    }
}

impl std::error::Error for DerError {}

/// One DER element.
struct Tlv<'a> {
    tag: u8,
    /// Tag, length and contents: the element's whole encoding.
    whole: &'a [u8],
    contents: &'a [u8],
}

/// Reads the next element off `input` (single-byte tags; definite lengths of up to 4 bytes,
/// minimally encoded as DER requires).
fn next_tlv<'a>(input: &mut &'a [u8]) -> Result<Tlv<'a>, DerError> {
    let bytes = *input;
    let (&tag, rest) = bytes.split_first().ok_or(DerError("truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(DerError("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(DerError("indefinite or oversized length"));
        }
        if rest.len() < n {
            return Err(DerError("truncated length"));
        }
        let (len_bytes, rest) = rest.split_at(n);
        if len_bytes[0] == 0 {
            return Err(DerError("non-minimal length"));
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(DerError("non-minimal length"));
        }
        (len, rest)
    };
    if rest.len() < len {
        return Err(DerError("element longer than its input"));
    }
    let header = bytes.len() - rest.len();
    let (contents, after) = rest.split_at(len);
    *input = after;
    Ok(Tlv {
        tag,
        whole: &bytes[..header + len],
        contents,
    })
}

fn expect_tlv<'a>(input: &mut &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let tlv = next_tlv(input).map_err(|_| DerError(what))?;
    if tlv.tag != tag {
        return Err(DerError(what));
    }
    Ok(tlv)
}

/// The TBSCertificate's contents, with the `version` field (if any) still at their front.
fn tbs_contents(cert: &[u8]) -> Result<&[u8], DerError> {
    let mut input = cert;
    let outer = expect_tlv(&mut input, DER_SEQUENCE, "not a Certificate SEQUENCE")?;
    if !input.is_empty() {
        return Err(DerError("trailing data after the Certificate"));
    }
    let mut fields = outer.contents;
    Ok(expect_tlv(&mut fields, DER_SEQUENCE, "no TBSCertificate SEQUENCE")?.contents)
}

/// The X.509 version of a DER certificate: 1, 2 or 3 (v1 certificates omit the field).
pub(crate) fn certificate_version(cert: &[u8]) -> Result<u8, DerError> {
    let mut tbs = tbs_contents(cert)?;
    if tbs.first() != Some(&DER_VERSION_TAG) {
        return Ok(1);
    }
    let explicit = next_tlv(&mut tbs)?;
    let mut inner = explicit.contents;
    let int = expect_tlv(&mut inner, DER_INTEGER, "version is not an INTEGER")?;
    match int.contents {
        [v @ 0..=2] => Ok(v + 1),
        _ => Err(DerError("unknown version")),
    }
}

/// The SubjectPublicKeyInfo of a DER X.509 certificate of any version, as its whole DER
/// encoding (the form [`SigningKey::public_key`] returns).
///
/// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber INTEGER, signature
/// AlgorithmIdentifier, issuer Name, validity Validity, subject Name, subjectPublicKeyInfo, ... }
pub(crate) fn certificate_spki(cert: &[u8]) -> Result<&[u8], DerError> {
    let mut tbs = tbs_contents(cert)?;
    if tbs.first() == Some(&DER_VERSION_TAG) {
        next_tlv(&mut tbs)?;
    }
    expect_tlv(&mut tbs, DER_INTEGER, "no serialNumber")?;
    for what in [
        "no signature AlgorithmIdentifier",
        "no issuer",
        "no validity",
        "no subject",
    ] {
        expect_tlv(&mut tbs, DER_SEQUENCE, what)?;
    }
    Ok(expect_tlv(&mut tbs, DER_SEQUENCE, "no subjectPublicKeyInfo")?.whole)
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
#[derive(Debug)]
struct WebPki {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

/// The server's chain holds an X.509 v1 certificate, which cannot be verified.
struct V1ServerCertificate {
    position: &'static str,
}

/// rustls shows a [`CertificateError::Other`] with `Debug`: make that the readable message.
impl std::fmt::Debug for V1ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for V1ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's {} certificate is X.509 v1, which sslmode=verify-ca and verify-full \
             cannot verify (no extensions, so no subjectAltName and no CA constraints): reissue \
             it as v3 (openssl x509 -req ... -extfile with subjectAltName=DNS:<host>), or use \
             sslmode=require without sslrootcert",
            self.position
        )
    }
}

impl std::error::Error for V1ServerCertificate {}

/// `Some(which)` when the end-entity or an intermediate certificate is v1.
fn v1_in_chain(end_entity: &[u8], intermediates: &[CertificateDer<'_>]) -> Option<&'static str> {
    if certificate_version(end_entity) == Ok(1) {
        return Some("end-entity");
    }
    intermediates
        .iter()
        .any(|c| certificate_version(c) == Ok(1))
        .then_some("intermediate")
}

impl ServerCertVerifier for WebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(e))) => {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    match v1_in_chain(end_entity, intermediates) {
                        Some(position) => OtherError(Arc::new(V1ServerCertificate { position })),
                        None => e,
                    },
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a root: encrypt, accept any certificate (as libpq does), but
/// still check the handshake signatures with the provider's algorithms, so the peer must hold
/// the key of the certificate it shows.
///
/// Over TLS 1.3 the signature is checked against the public key read by [`certificate_spki`],
/// so a v1 server certificate works as it does with libpq. rustls offers no such check for
/// TLS 1.2, where a v1 certificate is refused by webpki.
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
        let spki = certificate_spki(cert).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki),
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

    // -----------------------------------------------------------------------------------------
    // SubjectPublicKeyInfo extraction, on certificates openssl makes
    // -----------------------------------------------------------------------------------------

    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl CLI is needed for these tests");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes `<name>.key` (`rsa` or `ec`) and `<name>.crt` signed by a v3 CA `ca`, as X.509 v1
    /// (PostgreSQL's documented `x509 -req` without extensions) or v3 (with `-extfile`).
    fn make_cert(dir: &Path, name: &str, kind: &str, v3: bool) {
        if !dir.join("ca.crt").exists() {
            openssl(
                dir,
                &[
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
                    "ca.key", "-out", "ca.crt", "-subj", "/CN=ca",
                ],
            );
        }
        let key = format!("{name}.key");
        match kind {
            "rsa" => openssl(dir, &["genpkey", "-algorithm", "RSA", "-out", &key]),
            _ => openssl(
                dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &key,
                ],
            ),
        }
        let csr = format!("{name}.csr");
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                "/CN=someone",
                "-out",
                &csr,
            ],
        );
        let crt = format!("{name}.crt");
        let ext = format!("{name}.ext");
        std::fs::write(dir.join(&ext), "basicConstraints=CA:FALSE\n").unwrap();
        let mut args = vec![
            "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "2", "-out",
            &crt,
        ];
        if v3 {
            args.extend(["-extfile", &ext]);
        }
        openssl(dir, &args);
    }

    fn der_cert(dir: &Path, name: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(dir.join(format!("{name}.crt"))).unwrap()
    }

    /// What openssl itself says the certificate's public key is.
    fn openssl_spki(dir: &Path, name: &str) -> Vec<u8> {
        let pem_file = format!("{name}.pub");
        openssl(
            dir,
            &[
                "x509",
                "-in",
                &format!("{name}.crt"),
                "-pubkey",
                "-noout",
                "-out",
                &pem_file,
            ],
        );
        SubjectPublicKeyInfoDer::from_pem_file(dir.join(pem_file))
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn spki_and_version_of_v1_and_v3_rsa_and_ec_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, kind, v3) in [
            ("rsa1", "rsa", false),
            ("rsa3", "rsa", true),
            ("ec1", "ec", false),
            ("ec3", "ec", true),
        ] {
            make_cert(d, name, kind, v3);
            let cert = der_cert(d, name);
            assert_eq!(
                certificate_version(&cert),
                Ok(if v3 { 3 } else { 1 }),
                "{name}"
            );
            let spki = certificate_spki(&cert).unwrap();
            assert_eq!(spki, openssl_spki(d, name).as_slice(), "{name}");
            // And it is what the provider derives from the private key.
            let key = load_key(&d.join(format!("{name}.key")), &provider()).unwrap();
            assert_eq!(key.public_key().unwrap().as_ref(), spki, "{name}");
        }
        assert_eq!(certificate_version(&der_cert(d, "ca")), Ok(3));
    }

    #[test]
    fn v1_client_certificate_is_accepted_and_a_foreign_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_cert(d, "c", "rsa", false);
        make_cert(d, "other", "ec", false);
        let p = |n: &str| d.join(n).display().to_string();
        let ok = format!(
            "postgres://h?sslmode=require&sslcert={}&sslkey={}",
            p("c.crt"),
            p("c.key")
        );
        assert!(client_config(&url(&ok)).unwrap().is_some());
        let wrong = format!(
            "postgres://h?sslmode=require&sslcert={}&sslkey={}",
            p("c.crt"),
            p("other.key")
        );
        match client_config(&url(&wrong)) {
            Err(ConnectError::Url { param, message }) => {
                assert_eq!(param, "sslkey");
                assert!(message.contains("does not match"), "{message}");
                assert!(message.contains("other.key"), "{message}");
            }
            other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_broken_certificate_is_reported_on_sslcert() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_cert(d, "c", "rsa", false);
        let junk = d.join("junk.crt");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let u = format!(
            "postgres://h?sslcert={}&sslkey={}",
            junk.display(),
            d.join("c.key").display()
        );
        assert_eq!(param_of(client_config(&url(&u))), "sslcert");
    }

    #[test]
    fn der_reader_refuses_malformed_input() {
        let dir = tempfile::tempdir().unwrap();
        make_cert(dir.path(), "c", "ec", true);
        let cert = der_cert(dir.path(), "c").as_ref().to_vec();
        assert!(certificate_spki(&cert).is_ok());
        // Every truncation fails cleanly.
        for n in 0..cert.len() {
            assert!(certificate_spki(&cert[..n]).is_err(), "prefix {n}");
        }
        let mut trailing = cert.clone();
        trailing.push(0);
        assert!(certificate_spki(&trailing).is_err());
        assert!(
            certificate_spki(&[0x30, 0x80, 0x00, 0x00]).is_err(),
            "indefinite length"
        );
        assert!(
            certificate_spki(&[0x30, 0x81, 0x01, 0x00]).is_err(),
            "non-minimal length"
        );
        assert!(certificate_spki(&[0x31, 0x00]).is_err(), "not a SEQUENCE");
    }

    proptest::proptest! {
        #[test]
        fn der_reader_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = certificate_spki(&bytes);
            let _ = certificate_version(&bytes);
        }
    }
}

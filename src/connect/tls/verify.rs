//! The server-certificate verifiers: webpki's chain check, with or without the host name
//! (`verify-full`, `verify-ca`), explaining a v1 certificate it refuses; and the encrypt-only
//! verifier of `require` without a root, which still checks the handshake signature.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::x509::{certificate_spki, certificate_version};

#[derive(Debug)]
pub(super) struct WebPki {
    pub(super) inner: Arc<WebPkiServerVerifier>,
    pub(super) check_name: bool,
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
pub(super) struct EncryptOnly(pub(super) Arc<CryptoProvider>);

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

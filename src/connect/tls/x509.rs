//! What the TLS code reads out of a certificate itself: its X.509 version and its
//! SubjectPublicKeyInfo, whatever its version (webpki reads only v3). Decoded by x509-cert,
//! which tokio-postgres-rustls already uses to read the certificate's signature algorithm
//! for channel binding; it refuses BER, indefinite and non-minimal lengths and trailing data.

use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::der::{Decode, Encode};

/// Why [`certificate_spki`] or [`certificate_version`] could not read a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(x509_cert::der::Error);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed DER: {}", self.0)
    }
}

impl std::error::Error for DerError {}

fn decode(cert: &[u8]) -> Result<Certificate, DerError> {
    Certificate::from_der(cert).map_err(DerError)
}

/// The X.509 version of a DER certificate: 1, 2 or 3 (v1 certificates omit the field).
pub(crate) fn certificate_version(cert: &[u8]) -> Result<u8, DerError> {
    Ok(match decode(cert)?.tbs_certificate.version {
        Version::V1 => 1,
        Version::V2 => 2,
        Version::V3 => 3,
    })
}

/// The SubjectPublicKeyInfo of a DER X.509 certificate of any version, as its whole DER
/// encoding (the form `SigningKey::public_key` returns).
pub(crate) fn certificate_spki(cert: &[u8]) -> Result<Vec<u8>, DerError> {
    decode(cert)?
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(DerError)
}

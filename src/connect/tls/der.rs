//! A minimal DER reader: just enough of X.509 to find a certificate's version and its public
//! key (SubjectPublicKeyInfo), whatever its version. Refuses indefinite and non-minimal lengths,
//! multi-byte tags and trailing data; never panics.

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
/// encoding (the form `SigningKey::public_key` returns).
///
/// TBSCertificate ::= SEQUENCE { \[0\] version OPTIONAL, serialNumber INTEGER, signature
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

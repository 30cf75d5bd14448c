//! Unit tests of the TLS configuration, the DER reader and the v1 certificate handling.

use super::x509::{certificate_spki, certificate_version};
use super::*;
use rustls::pki_types::SubjectPublicKeyInfoDer;
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
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
                "-out", "ca.crt", "-subj", "/CN=ca",
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
fn certificate_reader_refuses_malformed_input() {
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
    fn certificate_reader_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = certificate_spki(&bytes);
        let _ = certificate_version(&bytes);
    }
}

//! Certificates and TLS-enabled PostgreSQL servers for the binaries that connect over TLS.
//!
//! Certificates are made with the `openssl` CLI into a directory of the test binary's own
//! ([`Certs::fresh`]); which certificates a binary needs is its own business, the steps here
//! are the ones every binary shares ([`openssl`], [`sign`]). [`start_tls_server`] starts a
//! PostgreSQL with `ssl = on` that demands `cert` for role `certuser` (and optionally
//! scram-sha-256 for one password role) and refuses plain text; callers cache it in a
//! `OnceLock` when one instance per binary is wanted.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CustomOpts, CustomServer, start_custom};

/// A directory of certificates and keys, named by file (`ca.crt`, `client.key`, ...).
pub struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// A fresh, empty `<tag>-certs-<pid>` directory under Cargo's temporary directory for
    /// integration tests (removed first if a previous process with that pid left one).
    pub fn fresh(tag: &str) -> Certs {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Certs { dir }
    }

    /// The directory itself, where [`openssl`] runs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The absolute path of file `name`, as URL parameters want it.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The contents of file `name`; panics naming the file when it cannot be read.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let p = self.dir.join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }
}

/// Runs `openssl <args>` in `dir`; panics with openssl's stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl x509 -req -in <name>.csr -CA <ca>.crt -CAkey <ca>.key -out <name>.crt -days <days>`,
/// plus `-extfile <name>.ext` holding `ext` when given (without it OpenSSL 3 writes X.509 v1).
pub fn sign(dir: &Path, name: &str, ca: &str, ext: Option<&str>, days: u32) {
    let (csr, crt) = (format!("{name}.csr"), format!("{name}.crt"));
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    let (days, ext_file) = (days.to_string(), format!("{name}.ext"));
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &crt,
        "-days",
        &days,
    ];
    if let Some(ext) = ext {
        let p = dir.join(&ext_file);
        std::fs::write(&p, ext).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        args.extend(["-extfile", &ext_file]);
    }
    openssl(dir, &args);
}

/// Starts a PostgreSQL with `ssl = on` presenting `<server>.crt`/`<server>.key` from `c` and
/// trusting the PEM bundle `ca` for client certificates. pg_hba: `cert` for role certuser,
/// scram-sha-256 for the `(role, password)` in `scram` when given, plain text refused.
pub fn start_tls_server(
    c: &Certs,
    server: &str,
    ca: Vec<u8>,
    scram: Option<(&str, &str)>,
) -> CustomServer {
    let mut conf: Vec<String> = vec![
        "ssl = on".into(),
        "ssl_cert_file = 'server.crt'".into(),
        "ssl_key_file = 'server.key'".into(),
        "ssl_ca_file = 'ca.crt'".into(),
    ];
    let mut hba = String::from("hostssl all certuser 127.0.0.1/32 cert\n");
    let mut roles = vec![("certuser".into(), "unused-password".into())];
    if let Some((role, password)) = scram {
        conf.push("password_encryption = 'scram-sha-256'".into());
        hba.push_str(&format!("hostssl all {role} 127.0.0.1/32 scram-sha-256\n"));
        roles.push((role.into(), password.into()));
    }
    hba.push_str("hostnossl all all 0.0.0.0/0 reject\n");
    start_custom(CustomOpts {
        conf,
        hba: Some(hba),
        roles,
        files: vec![
            ("server.crt".into(), c.read(&format!("{server}.crt"))),
            ("server.key".into(), c.read(&format!("{server}.key"))),
            ("ca.crt".into(), ca),
        ],
    })
}

/// A URL to `db` on `s` as `user`, by `host` instead of 127.0.0.1 (`localhost` is the name
/// server certificates carry), with the query string `query`.
pub fn url(
    s: &CustomServer,
    user: &str,
    password: Option<&str>,
    host: &str,
    db: &str,
    query: &str,
) -> String {
    let url = s.url(user, password, db).replace("127.0.0.1", host);
    format!("{url}?{query}")
}

/// `sslmode=<mode>&sslrootcert=<root>.crt&sslcert=<cert>.crt&sslkey=<key>.key`, paths in `c`.
pub fn client_query(c: &Certs, mode: &str, root: &str, cert: &str, key: &str) -> String {
    format!(
        "sslmode={mode}&sslrootcert={}&sslcert={}&sslkey={}",
        c.path(&format!("{root}.crt")),
        c.path(&format!("{cert}.crt")),
        c.path(&format!("{key}.key"))
    )
}

/// A migrations directory holding `1_t.sql`, which creates table `table` (and drops it on undo).
pub fn one_migration(table: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("1_t.sql"),
        format!("CREATE TABLE {table} (id INT);\n-- @UNDO\nDROP TABLE {table};\n"),
    )
    .expect("write");
    dir
}

//! Unit tests of the DATABASE_URL parser.

use super::*;

fn err_param(url: &str) -> (String, String) {
    match parse(url) {
        Err(ConnectError::Url { param, message }) => (param, message),
        Err(other) => panic!("{url}: unexpected error {other:?}"),
        Ok(_) => panic!("{url}: parsed but should not"),
    }
}

#[test]
fn minimal_url_gets_defaults() {
    let p = parse("postgresql://root@db").unwrap();
    assert_eq!(p.user.as_deref(), Some("root"));
    assert_eq!(p.password, None);
    assert_eq!(
        p.hosts,
        vec![Host::Tcp {
            host: "db".into(),
            port: 26257
        }]
    );
    assert_eq!(p.dbname, None);
    assert_eq!(p.sslmode, SslMode::Prefer);
    assert_eq!(p.application_name, "crdb-migrate");
    assert_eq!(p.connect_timeout, Some(Duration::from_secs(10)));
    assert!(p.options.is_none() && p.sslrootcert.is_none());
}

#[test]
fn both_schemes_and_case() {
    assert!(parse("postgres://u@h/db").is_ok());
    assert!(parse("postgresql://u@h/db").is_ok());
    assert!(parse("PostgreSQL://u@h/db").is_ok());
    assert_eq!(err_param("mysql://u@h/db").0, "url");
    assert_eq!(err_param("h:26257/db").0, "url");
}

#[test]
fn every_known_key() {
    let p = parse(
        "postgresql://u:pw@h:1234/app?sslmode=verify-full&sslrootcert=/c/ca.crt\
         &sslcert=/c/client.u.crt&sslkey=/c/client.u.key&options=--cluster%3Drouting-id\
         &application_name=my%20app&connect_timeout=3",
    )
    .unwrap();
    assert_eq!(p.sslmode, SslMode::VerifyFull);
    assert_eq!(p.sslrootcert, Some(PathBuf::from("/c/ca.crt")));
    assert_eq!(p.sslcert, Some(PathBuf::from("/c/client.u.crt")));
    assert_eq!(p.sslkey, Some(PathBuf::from("/c/client.u.key")));
    assert_eq!(p.options.as_deref(), Some("--cluster=routing-id"));
    assert_eq!(p.application_name, "my app");
    assert_eq!(p.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(p.dbname.as_deref(), Some("app"));
    assert_eq!(
        p.hosts,
        vec![Host::Tcp {
            host: "h".into(),
            port: 1234
        }]
    );
}

#[test]
fn every_sslmode() {
    for (s, m) in [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(
            parse(&format!("postgres://h?sslmode={s}")).unwrap().sslmode,
            m
        );
        assert_eq!(m.as_str(), s);
    }
    let (param, message) = err_param("postgres://h?sslmode=allow");
    assert_eq!(param, "sslmode");
    assert!(message.contains("\"allow\""), "{message}");
}

#[test]
fn connect_timeout_values() {
    assert_eq!(
        parse("postgres://h?connect_timeout=0")
            .unwrap()
            .connect_timeout,
        None
    );
    for bad in ["-1", "1.5", "10s", ""] {
        assert_eq!(
            err_param(&format!("postgres://h?connect_timeout={bad}")).0,
            "connect_timeout"
        );
    }
}

#[test]
fn ipv6_and_host_lists() {
    let p = parse("postgresql://u@[::1]:5432,[fe80::1],db.example:26258,10.0.0.1/x").unwrap();
    assert_eq!(
        p.hosts,
        vec![
            Host::Tcp {
                host: "::1".into(),
                port: 5432
            },
            Host::Tcp {
                host: "fe80::1".into(),
                port: 26257
            },
            Host::Tcp {
                host: "db.example".into(),
                port: 26258
            },
            Host::Tcp {
                host: "10.0.0.1".into(),
                port: 26257
            },
        ]
    );
    assert_eq!(p.hosts[0].to_string(), "[::1]:5432");
    assert_eq!(err_param("postgres://[::1/x").0, "host");
    assert_eq!(err_param("postgres://[nothost]:1/x").0, "host");
    assert_eq!(err_param("postgres://::1/x").0, "host");
    assert_eq!(err_param("postgres://a,,b/x").0, "host");
    assert_eq!(err_param("postgres://u@/x").0, "host");
    assert_eq!(err_param("postgres://h:99999/x").0, "port");
    assert_eq!(err_param("postgres://h:0/x").0, "port");
}

#[test]
fn unix_socket_host() {
    let p = parse("postgres://u@%2Ftmp%2Fpg:5433/db").unwrap();
    assert_eq!(
        p.hosts,
        vec![Host::Unix {
            dir: PathBuf::from("/tmp/pg"),
            port: 5433
        }]
    );
}

#[test]
fn percent_decoding_user_password_db() {
    let p = parse("postgresql://us%40er:p%3Aa%2Fs%40s%25@h/my%20db").unwrap();
    assert_eq!(p.user.as_deref(), Some("us@er"));
    assert_eq!(p.password.as_deref(), Some("p:a/s@s%"));
    assert_eq!(p.dbname.as_deref(), Some("my db"));
    // An unencoded '@' in the password still works: the last '@' ends the user info.
    let p = parse("postgresql://u:p@ss@h/db").unwrap();
    assert_eq!(p.password.as_deref(), Some("p@ss"));
    // '+' is not a space.
    let p = parse("postgresql://u:a+b@h/db").unwrap();
    assert_eq!(p.password.as_deref(), Some("a+b"));
    // Empty password is kept as empty.
    let p = parse("postgresql://u:@h/db").unwrap();
    assert_eq!(p.password.as_deref(), Some(""));
}

#[test]
fn bad_percent_encoding_names_part_without_value() {
    let (param, message) = err_param("postgresql://u:s3cr%ZZet@h/db");
    assert_eq!(param, "password");
    assert!(!message.contains("s3cr"), "{message}");
    assert_eq!(err_param("postgresql://u%ff@h/db").0, "user");
    assert_eq!(err_param("postgresql://u@h/d%2").0, "dbname");
    assert_eq!(err_param("postgresql://u@h/a%2Fb").0, "dbname");
    assert_eq!(err_param("postgresql://u@h/db?options=%0").0, "options");
    // Two hex digits, nothing else: not a sign (`%+1`), not a trailing `%`.
    assert_eq!(err_param("postgresql://u:a%+1@h/db").0, "password");
    assert_eq!(err_param("postgresql://u:a%@h/db").0, "password");
}

#[test]
fn unknown_key_is_named_and_value_not_echoed() {
    let (param, message) = err_param("postgresql://u@h/db?password=hunter2secret");
    assert_eq!(param, "password");
    assert!(!message.contains("hunter2secret"), "{message}");
    let (param, message) =
        err_param("postgresql://u@h/db?sslmode=require&target_session_attrs=any");
    assert_eq!(param, "target_session_attrs");
    assert!(message.contains("unknown parameter"), "{message}");
}

#[test]
fn empty_paths_and_fragments_refused() {
    assert_eq!(err_param("postgres://h?sslrootcert=").0, "sslrootcert");
    assert_eq!(err_param("postgres://u:a#b@h/db").0, "url");
}

#[test]
fn redacted_hides_password() {
    let p = parse("postgresql://u:topsecret@[::1]:5432,h2/db?sslmode=require&options=-c%20x%3D1")
        .unwrap();
    let r = p.redacted();
    assert!(!r.contains("topsecret"), "{r}");
    assert!(
        r.starts_with("postgresql://u:***@[::1]:5432,h2:26257/db?sslmode=require"),
        "{r}"
    );
    assert!(r.contains("options=-c x=1"), "{r}");
}

//! PostgreSQL dressed as CockroachDB, so the binary's CockroachDB branches run here too: the
//! flavour is told from `version()`, so a database whose unqualified `version()` says
//! `CockroachDB CCL v26.1.0 ...` gets every CockroachDB statement the binary has.
//!
//! The dress, per database (see [`VERSION_SQL`], [`SESSION_SQL`], [`INTERNALS_SQL`]):
//! - schema `crdb_dress` with `version()` ([`Dress::Minimal`] stops there) and, in
//!   [`Dress::Full`], `current_setting` (one and two arguments: adds CockroachDB's `session_id`
//!   variable) and `current_database()` (which can name a database that is not in
//!   `pg_database`: a CockroachDB login to a missing database); the database's `search_path`
//!   is `public, crdb_dress, pg_catalog`, so these resolve before `pg_catalog`'s (PostgreSQL
//!   searches `pg_catalog` first only when the path does not name it) and tables still go to
//!   `public`;
//! - schema `crdb_internal` with `jobs` and `tables`, the columns the binary reads:
//!   [`Gate::Readable`] grants them to everyone (v25.4 and older), [`Gate::Revoked`] does not,
//!   so reads fail with 42501 as on a default v26.1 (`allow_unsafe_internals` off), and
//!   [`Gate::Absent`] has no such schema at all (42P01). A superuser reads anything, so a
//!   dress that is not readable is used through a role of its own.
//!
//! [`DressedServer`] is a PostgreSQL of its own with `log_statement = all`, whose log says what
//! each session sent, in order ([`DressedServer::statements`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{
    CustomOpts, CustomServer, TestDb, clean_tag, psql, quote_ident, quote_literal, start_custom,
};

/// What `version()` says in a dressed database.
pub const DRESSED_VERSION: &str =
    "CockroachDB CCL v26.1.0 (x86_64-pc-linux-gnu, built 2026/02/02 00:00:00, go1.23.12)";

/// How readable the dressed `crdb_internal` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Readable by everyone: CockroachDB up to v25.4 (or `allow_unsafe_internals = on`).
    Readable,
    /// Not readable (42501): a default v26.1, `allow_unsafe_internals = off`.
    Revoked,
    /// No `crdb_internal` schema at all: reads fail with 42P01.
    Absent,
}

/// How much of CockroachDB the dress imitates besides `version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dress {
    /// `version()`, `current_setting` (with `session_id`) and `current_database()`.
    Full,
    /// `version()` alone: no CockroachDB session variable, the server's own functions else.
    Minimal,
}

/// `version()` saying CockroachDB, in schema `crdb_dress`.
pub const VERSION_SQL: &str = r#"
CREATE SCHEMA crdb_dress;
GRANT USAGE ON SCHEMA crdb_dress TO PUBLIC;
CREATE FUNCTION crdb_dress.version() RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT 'CockroachDB CCL v26.1.0 (x86_64-pc-linux-gnu, built 2026/02/02 00:00:00, go1.23.12)'::text $$;
"#;

/// [`Dress::Full`]'s session functions: `current_setting` knows `session_id` (the backend pid
/// in 32 hex digits), `current_database()` can be told another name (`crdb_dress.database`).
pub const SESSION_SQL: &str = r#"
CREATE FUNCTION crdb_dress.current_setting(text) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT CASE WHEN $1 = 'session_id'
                    THEN lpad(to_hex(pg_catalog.pg_backend_pid()), 32, '0')
                    ELSE pg_catalog.current_setting($1) END $$;
CREATE FUNCTION crdb_dress.current_setting(text, boolean) RETURNS text LANGUAGE sql STABLE
  AS $$ SELECT CASE WHEN $1 = 'session_id'
                    THEN lpad(to_hex(pg_catalog.pg_backend_pid()), 32, '0')
                    ELSE pg_catalog.current_setting($1, $2) END $$;
CREATE FUNCTION crdb_dress.current_database() RETURNS name LANGUAGE sql STABLE
  AS $$ SELECT coalesce(nullif(pg_catalog.current_setting('crdb_dress.database', true), '')::name,
                        pg_catalog.current_database()) $$;
"#;

/// Schema `crdb_internal` with the `jobs` and `tables` columns the binary reads, granted to
/// no one.
pub const INTERNALS_SQL: &str = r#"
CREATE SCHEMA crdb_internal;
CREATE TABLE crdb_internal.jobs (
  job_id INT8 PRIMARY KEY, job_type TEXT NOT NULL DEFAULT 'NEW SCHEMA CHANGE',
  description TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'running',
  running_status TEXT, fraction_completed FLOAT8, error TEXT,
  descriptor_ids INT8[] NOT NULL DEFAULT '{}', created TIMESTAMPTZ NOT NULL DEFAULT now(),
  user_name TEXT NOT NULL DEFAULT current_user);
CREATE TABLE crdb_internal.tables (table_id INT8 PRIMARY KEY, name TEXT NOT NULL,
  database_name TEXT NOT NULL DEFAULT pg_catalog.current_database());
"#;

/// Makes `crdb_internal` readable (and writable, so a test's migration can add a job).
const GRANT_INTERNALS: &str = "GRANT USAGE ON SCHEMA crdb_internal TO PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA crdb_internal TO PUBLIC;";

/// Dresses the database behind `admin_url` (a superuser's URL for it, named `name`) in full.
pub fn dress(admin_url: &str, name: &str, gate: Gate) {
    dress_as(admin_url, name, Dress::Full, gate);
}

/// Dresses the database behind `admin_url` (a superuser's URL for it, named `name`).
pub fn dress_as(admin_url: &str, name: &str, dress: Dress, gate: Gate) {
    psql(admin_url, VERSION_SQL);
    if dress == Dress::Full {
        psql(admin_url, SESSION_SQL);
    }
    if gate != Gate::Absent {
        psql(admin_url, INTERNALS_SQL);
    }
    if gate == Gate::Readable {
        psql(admin_url, GRANT_INTERNALS);
    }
    psql(
        admin_url,
        &format!(
            "ALTER DATABASE {} SET search_path = public, crdb_dress, pg_catalog",
            quote_ident(name)
        ),
    );
}

/// Makes a login role `role` that owns database `name` (so it creates tables in `public`).
pub fn owner_role(admin_url: &str, name: &str, role: &str) {
    psql(
        admin_url,
        &format!(
            "CREATE ROLE {r} LOGIN; ALTER DATABASE {d} OWNER TO {r};",
            r = quote_ident(role),
            d = quote_ident(name)
        ),
    );
}

/// Makes the dressed `current_database()` of `role` in database `name` say `shown`: a login
/// to a database that does not exist, as CockroachDB accepts one.
pub fn pretend_database(admin_url: &str, name: &str, role: &str, shown: &str) {
    psql(
        admin_url,
        &format!(
            "ALTER ROLE {} IN DATABASE {} SET crdb_dress.database = {}",
            quote_ident(role),
            quote_ident(name),
            quote_literal(shown)
        ),
    );
}

/// A job row in the dressed `crdb_internal.jobs` on table `table` (registered in
/// `crdb_internal.tables` under `table_id`), started by `user`.
pub fn add_job(admin_url: &str, id: i64, status: &str, table: &str, table_id: i64, user: &str) {
    psql(
        admin_url,
        &format!(
            "INSERT INTO crdb_internal.tables (table_id, name) VALUES ({table_id}, {t}) \
               ON CONFLICT DO NOTHING;
             INSERT INTO crdb_internal.jobs (job_id, description, status, descriptor_ids, user_name) \
               VALUES ({id}, {desc}, {s}, ARRAY[{table_id}]::INT8[], {u});",
            t = quote_literal(table),
            desc = quote_literal(&format!(
                "ALTER TABLE dressed.public.{table} ADD COLUMN x INT8"
            )),
            s = quote_literal(status),
            u = quote_literal(user),
        ),
    );
}

/// A PostgreSQL of its own whose log holds every statement (`log_statement = all`), each line
/// prefixed `@@<database>@@<pid>@@<application_name>@@`.
pub struct DressedServer {
    server: CustomServer,
    defaultdb: OnceLock<String>,
}

/// One database on the [`DressedServer`].
#[derive(Debug, Clone)]
pub struct Dressed {
    /// The database.
    pub name: String,
    /// A superuser's URL for it (psql, over the socket).
    pub admin_url: String,
    /// The URL the binary uses: the superuser ([`Gate::Readable`]) or the database's owner
    /// role `<name>_app` (always a role for any other gate, which a superuser would bypass).
    pub url: String,
    /// The role in [`Dressed::url`].
    pub user: String,
}

impl Dressed {
    /// The database as a superuser sees it, for the shared checks ([`super::table_exists`],
    /// [`super::count`], [`super::fixtures::ledger_rows`], ...).
    pub fn admin(&self) -> TestDb {
        TestDb {
            name: self.name.clone(),
            url: self.admin_url.clone(),
        }
    }
}

/// One logged statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The backend pid that sent it.
    pub pid: u32,
    /// `statement`, `execute`, `ERROR`, ... (the log line's tag), and its text.
    pub tag: String,
    /// The statement text (or the error message).
    pub text: String,
}

/// The shared dressed server of this test binary.
pub fn dressed_server() -> &'static DressedServer {
    static S: OnceLock<DressedServer> = OnceLock::new();
    S.get_or_init(|| {
        let server = start_custom(CustomOpts {
            conf: vec![
                "log_statement = 'all'".into(),
                "log_line_prefix = '@@%d@@%p@@%a@@ '".into(),
                "log_min_error_statement = error".into(),
                "max_connections = 100".into(),
            ],
            ..CustomOpts::default()
        });
        // `pg_has_role(..., 'admin', 'MEMBER')`: CockroachDB's admin role.
        psql(&server.admin_url("postgres"), "CREATE ROLE admin NOLOGIN");
        DressedServer {
            server,
            defaultdb: OnceLock::new(),
        }
    })
}

impl DressedServer {
    /// A fresh database in [`Dress::Full`]; `as_role` makes the binary connect as the
    /// database's owner role (not an admin) even when readable.
    pub fn fresh(&self, tag: &str, gate: Gate, as_role: bool) -> Dressed {
        self.fresh_as(tag, Dress::Full, gate, as_role)
    }

    /// A fresh database in `dress`; the binary connects as the database's owner role when
    /// `as_role` or when `crdb_internal` is not readable.
    pub fn fresh_as(&self, tag: &str, dress: Dress, gate: Gate, as_role: bool) -> Dressed {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("d_{}_{n}_{}", clean_tag(tag, 30), std::process::id());
        psql(
            &self.server.admin_url("postgres"),
            &format!("CREATE DATABASE {}", quote_ident(&name)),
        );
        let admin_url = self.server.admin_url(&name);
        dress_as(&admin_url, &name, dress, gate);
        let user = if as_role || gate != Gate::Readable {
            let role = format!("{name}_app");
            owner_role(&admin_url, &name, &role);
            role
        } else {
            "postgres".to_string()
        };
        let url = format!("{}?sslmode=disable", self.server.url(&user, None, &name));
        Dressed {
            name,
            admin_url,
            url,
            user,
        }
    }

    /// A fresh database left undressed (plain PostgreSQL), used by a superuser: for tests that
    /// read what the binary sent on PostgreSQL's own path.
    pub fn plain(&self, tag: &str) -> Dressed {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("p_{}_{n}_{}", clean_tag(tag, 30), std::process::id());
        psql(
            &self.server.admin_url("postgres"),
            &format!("CREATE DATABASE {}", quote_ident(&name)),
        );
        let url = format!(
            "{}?sslmode=disable",
            self.server.url("postgres", None, &name)
        );
        Dressed {
            admin_url: self.server.admin_url(&name),
            name,
            url,
            user: "postgres".to_string(),
        }
    }

    /// CockroachDB's `defaultdb`, dressed (readable), made on first use: what creating a
    /// missing database connects through. Returns its name.
    pub fn defaultdb(&self) -> String {
        self.defaultdb
            .get_or_init(|| {
                let name = "defaultdb".to_string();
                psql(
                    &self.server.admin_url("postgres"),
                    "CREATE DATABASE defaultdb",
                );
                dress(&self.server.admin_url(&name), &name, Gate::Readable);
                name
            })
            .clone()
    }

    /// The server's TCP port (for a proxy in front of it).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Where the server writes its log.
    fn log_path(&self) -> PathBuf {
        self.server
            .data_dir()
            .parent()
            .expect("data dir has a parent")
            .join("server.log")
    }

    /// Every statement (and error) the binary's sessions (`application_name` crdb-migrate)
    /// logged in database `db`, in order; a statement's continuation lines are joined to it
    /// with `\n`.
    pub fn statements(&self, db: &str) -> Vec<Logged> {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let mut out: Vec<Logged> = Vec::new();
        let mut ours = false;
        for line in log.lines() {
            let Some(rest) = line.strip_prefix("@@") else {
                if ours && let Some(last) = out.last_mut() {
                    last.text.push('\n');
                    last.text.push_str(line.trim_start_matches('\t'));
                }
                continue;
            };
            let mut parts = rest.splitn(4, "@@");
            let (Some(d), Some(pid), Some(app), Some(msg)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                ours = false;
                continue;
            };
            ours = d == db && app == "crdb-migrate";
            if !ours {
                continue;
            }
            let msg = msg.trim_start();
            let (tag, text) = match msg.split_once(":  ") {
                Some(("LOG", body)) => match body.split_once(": ") {
                    Some((t, s)) => (t.to_string(), s.to_string()),
                    None => ("LOG".to_string(), body.to_string()),
                },
                Some((level, body)) => (level.to_string(), body.to_string()),
                None => ("?".to_string(), msg.to_string()),
            };
            out.push(Logged {
                pid: pid.parse().unwrap_or(0),
                tag,
                text,
            });
        }
        out
    }
}

/// A statement the server ran (`statement`, `execute ...`) or refused before running it
/// (`STATEMENT`, after its `ERROR`).
pub fn is_sent(l: &Logged) -> bool {
    l.tag.starts_with("statement") || l.tag.starts_with("execute") || l.tag == "STATEMENT"
}

/// The statements (not errors or details) that contain `needle`.
pub fn sent<'a>(log: &'a [Logged], needle: &str) -> Vec<&'a Logged> {
    log.iter()
        .filter(|l| is_sent(l) && l.text.contains(needle))
        .collect()
}

/// Index of the first statement containing `needle`.
pub fn first(log: &[Logged], needle: &str) -> usize {
    log.iter()
        .position(|l| is_sent(l) && l.text.contains(needle))
        .unwrap_or_else(|| panic!("no statement with {needle:?} in {log:#?}"))
}

/// Every ERROR in the log happened outside a transaction of its session: a statement the
/// server refuses never takes a migration (or a ledger write) down with it.
pub fn errors_outside_transactions(log: &[Logged]) -> Vec<String> {
    let mut in_tx: HashMap<u32, bool> = HashMap::new();
    let mut errors = Vec::new();
    for l in log {
        if l.tag.starts_with("statement") || l.tag.starts_with("execute") {
            let t = l.text.trim_start().to_uppercase();
            if t.starts_with("BEGIN") || t.starts_with("START TRANSACTION") {
                in_tx.insert(l.pid, true);
            } else if t.starts_with("COMMIT") || t.starts_with("ROLLBACK") || t.starts_with("END") {
                in_tx.insert(l.pid, false);
            }
        } else if l.tag == "ERROR" {
            assert!(
                !in_tx.get(&l.pid).copied().unwrap_or(false),
                "an error inside a transaction: {l:?}\n{log:#?}"
            );
            errors.push(l.text.clone());
        }
    }
    errors
}

/// The statements each session sent between its `BEGIN` and the `COMMIT` or `ROLLBACK` that
/// ends it (the `BEGIN` and the end excluded).
pub fn sent_in_transactions(log: &[Logged]) -> Vec<&Logged> {
    let mut in_tx: HashMap<u32, bool> = HashMap::new();
    let mut inside = Vec::new();
    for l in log.iter().filter(|l| is_sent(l)) {
        let t = l.text.trim_start().to_uppercase();
        if t.starts_with("BEGIN") || t.starts_with("START TRANSACTION") {
            in_tx.insert(l.pid, true);
        } else if t.starts_with("COMMIT") || t.starts_with("ROLLBACK") || t.starts_with("END") {
            in_tx.insert(l.pid, false);
        } else if in_tx.get(&l.pid).copied().unwrap_or(false) {
            inside.push(l);
        }
    }
    inside
}

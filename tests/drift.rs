//! Drift against a real PostgreSQL: the snapshot a run that did work stores, hand changes of
//! each kind named by `status`, `MIGRATE_ON_DRIFT` (warn goes on, refuse exits 32 with nothing
//! applied), a rollback storing its new state, and a no-op `migrate` sending no snapshot query.

mod support;

use support::dressed::{dressed_server, is_sent};
use support::*;

const V1: &str = "CREATE TABLE accounts (id INT PRIMARY KEY, name TEXT DEFAULT 'a', age INT);\n\
                  -- @UNDO\nDROP TABLE accounts;\n";
const V2: &str = "CREATE TABLE orders (id INT PRIMARY KEY);\n-- @UNDO\nDROP TABLE orders;\n";

fn migrate(url: &str, dir: &std::path::Path, on_drift: Option<&str>) -> Output {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_WAIT_TIMEOUT", "10s").arg("migrate");
    if let Some(v) = on_drift {
        c.env("MIGRATE_ON_DRIFT", v);
    }
    run(&mut c)
}

fn status(url: &str, dir: &std::path::Path, json: bool) -> Output {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_WAIT_TIMEOUT", "10s").arg("status");
    if json {
        c.arg("--json");
    }
    let out = run(&mut c);
    out.expect_code(0);
    out
}

/// The `schema_drift` disagreement of `status --json`, if any.
fn drift_of(url: &str, dir: &std::path::Path) -> Option<serde_json::Value> {
    let out = status(url, dir, true);
    let start = out.stdout.find("{\n").expect("status JSON");
    let s: serde_json::Value = serde_json::from_str(&out.stdout[start..]).expect("JSON");
    s["disagreements"]
        .as_array()
        .expect("disagreements")
        .iter()
        .find(|d| d["kind"] == "schema_drift")
        .cloned()
}

fn files(with_v2: bool) -> tempfile::TempDir {
    let mut f: Vec<(&str, &[u8])> = vec![("1_accounts.sql", V1.as_bytes())];
    if with_v2 {
        f.push(("2_orders.sql", V2.as_bytes()));
    }
    dir_with(&f)
}

/// One object of each kind to remove, one to change and the base the added ones hang on.
const KINDS: &str = "CREATE TABLE base (id INT PRIMARY KEY, v TEXT, w TEXT);\n\
    CREATE TABLE gone (id INT);\n\
    CREATE TABLE col_add (id INT);\n\
    CREATE TABLE col_drop (id INT, note TEXT);\n\
    CREATE TABLE col_chg (id INT, note TEXT DEFAULT 'a');\n\
    CREATE TABLE con_add (n INT);\n\
    CREATE TABLE con_drop (n INT CONSTRAINT pos CHECK (n > 0));\n\
    CREATE TABLE con_chg (n INT CONSTRAINT pos CHECK (n > 0));\n\
    CREATE INDEX i_gone ON base (v);\n\
    CREATE INDEX i_chg ON base (v);\n\
    CREATE VIEW v_gone AS SELECT id FROM base;\n\
    CREATE VIEW v_chg AS SELECT id FROM base;\n\
    CREATE FUNCTION f_gone() RETURNS INT LANGUAGE sql AS 'SELECT 1';\n\
    CREATE FUNCTION f_chg() RETURNS INT LANGUAGE sql AS 'SELECT\n    1';\n\
    CREATE TYPE ty_gone AS ENUM ('a');\n\
    CREATE TYPE ty_chg AS ENUM ('a');\n\
    CREATE SEQUENCE sq_gone;\n\
    CREATE SEQUENCE sq_chg;\n\
    CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;\n\
    CREATE TRIGGER tg_gone BEFORE INSERT ON base FOR EACH ROW EXECUTE FUNCTION trg();\n\
    CREATE TRIGGER tg_chg BEFORE INSERT ON base FOR EACH ROW EXECUTE FUNCTION trg();\n";

/// The hand changes, and what `status` must name for each.
const HAND: [(&str, &str); 27] = [
    ("CREATE TABLE t_hand (x INT)", "added table public.t_hand"),
    ("DROP TABLE gone", "removed table public.gone"),
    (
        "ALTER TABLE base ALTER COLUMN w SET NOT NULL",
        "changed table public.base",
    ),
    (
        "ALTER TABLE col_add ADD COLUMN extra INT",
        "changed table public.col_add",
    ),
    (
        "ALTER TABLE col_drop DROP COLUMN note",
        "changed table public.col_drop",
    ),
    (
        "ALTER TABLE col_chg ALTER COLUMN note SET DEFAULT 'b'",
        "changed table public.col_chg",
    ),
    (
        "ALTER TABLE con_add ADD CONSTRAINT big CHECK (n < 9)",
        "changed table public.con_add",
    ),
    (
        "ALTER TABLE con_drop DROP CONSTRAINT pos",
        "changed table public.con_drop",
    ),
    (
        "ALTER TABLE con_chg DROP CONSTRAINT pos, ADD CONSTRAINT pos CHECK (n > 1)",
        "changed table public.con_chg",
    ),
    (
        "CREATE INDEX i_hand ON base (w)",
        "added index public.i_hand",
    ),
    ("DROP INDEX i_gone", "removed index public.i_gone"),
    (
        "DROP INDEX i_chg; CREATE INDEX i_chg ON base (w)",
        "changed index public.i_chg",
    ),
    (
        "CREATE VIEW v_hand AS SELECT 1 AS one",
        "added view public.v_hand",
    ),
    ("DROP VIEW v_gone", "removed view public.v_gone"),
    (
        "CREATE OR REPLACE VIEW v_chg AS SELECT id, 2 AS two FROM base",
        "changed view public.v_chg",
    ),
    (
        "CREATE FUNCTION f_hand() RETURNS INT LANGUAGE sql AS 'SELECT 3'",
        "added function public.f_hand()",
    ),
    ("DROP FUNCTION f_gone()", "removed function public.f_gone()"),
    (
        "CREATE OR REPLACE FUNCTION f_chg() RETURNS INT LANGUAGE sql AS 'SELECT 2'",
        "changed function public.f_chg()",
    ),
    (
        "CREATE TYPE ty_hand AS ENUM ('x')",
        "added type public.ty_hand",
    ),
    ("DROP TYPE ty_gone", "removed type public.ty_gone"),
    (
        "ALTER TYPE ty_chg ADD VALUE 'z'",
        "changed type public.ty_chg",
    ),
    ("CREATE SEQUENCE sq_hand", "added sequence public.sq_hand"),
    ("DROP SEQUENCE sq_gone", "removed sequence public.sq_gone"),
    (
        "ALTER SEQUENCE sq_chg INCREMENT BY 5",
        "changed sequence public.sq_chg",
    ),
    (
        "CREATE TRIGGER tg_hand AFTER UPDATE ON base FOR EACH ROW EXECUTE FUNCTION trg()",
        "added trigger tg_hand on public.base",
    ),
    (
        "DROP TRIGGER tg_gone ON base",
        "removed trigger tg_gone on public.base",
    ),
    (
        "DROP TRIGGER tg_chg ON base; CREATE TRIGGER tg_chg AFTER INSERT ON base FOR EACH ROW EXECUTE FUNCTION trg()",
        "changed trigger tg_chg on public.base",
    ),
];

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn hand_changes_of_each_kind_are_named_by_status() {
    let db = fresh_db("drift_kinds");
    let dir = dir_with(&[("1_kinds.sql", KINDS.as_bytes())]);
    migrate(&db.url, dir.path(), None).expect_code(0);
    assert_eq!(drift_of(&db.url, dir.path()), None);
    // Whitespace inside a function body does not count.
    psql(
        &db.url,
        "CREATE OR REPLACE FUNCTION f_chg() RETURNS INT LANGUAGE sql AS 'SELECT 1'",
    );
    assert_eq!(drift_of(&db.url, dir.path()), None);
    for (sql, _) in HAND {
        psql(&db.url, sql);
    }
    let drift = drift_of(&db.url, dir.path()).expect("a schema_drift disagreement");
    assert_eq!(drift["version"], 1);
    let changes: Vec<String> = drift["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["change"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    let mut want: Vec<String> = HAND.iter().map(|(_, named)| named.to_string()).collect();
    want.sort();
    let mut got = changes.clone();
    got.sort();
    assert_eq!(got, want, "exactly the hand changes, each named once");
    let text = status(&db.url, dir.path(), false).stdout;
    assert!(
        text.contains("problem: the schema was changed by hand since version 1"),
        "{text}"
    );
    for (_, named) in HAND {
        assert!(text.contains(named), "{named} in {text}");
    }
}

/// Every kind of relation, and what hangs on each, for the server's relation lookup (through
/// `pg_depend` and `pg_index`) to be checked against the client's scan of `pg_class`. Nothing
/// of the kinds that `schema` shows but drift does not hash (identity options, view options).
const RELATION_KINDS: &str = "CREATE SCHEMA other;\n\
    CREATE TABLE other.elsewhere (id INT PRIMARY KEY, n SERIAL);\n\
    CREATE UNLOGGED TABLE scratch (id INT);\n\
    CREATE TABLE measure (at DATE NOT NULL, v INT) PARTITION BY RANGE (at);\n\
    CREATE TABLE measure_2026 PARTITION OF measure FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n\
    CREATE INDEX measure_at ON measure (at);\n\
    CREATE TABLE parent (id INT);\n\
    CREATE TABLE child (extra INT) INHERITS (parent);\n\
    CREATE MATERIALIZED VIEW mv AS SELECT id FROM base;\n\
    CREATE UNIQUE INDEX mv_id ON mv (id);\n\
    CREATE VIEW checked AS SELECT id FROM base WHERE id > 0;\n\
    CREATE TYPE pair AS (a INT, b TEXT);\n\
    COMMENT ON INDEX i_chg IS 'an index comment';\n\
    COMMENT ON TABLE other.elsewhere IS 'a table comment';\n\
    COMMENT ON COLUMN base.v IS 'a column comment';\n\
    CREATE STATISTICS base_stats ON v, w FROM base;\n\
    GRANT SELECT ON base TO PUBLIC;\n";

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the server builds the stored hashes there"
)]
fn the_server_hashes_objects_as_the_client_does() {
    // CockroachDB's path hashes the client's snapshot; PostgreSQL's server builds the same
    // text: per object, the SHA-256 of its sorted `part: value` lines, whitespace collapsed.
    let db = fresh_db("drift_formula");
    let all = format!("{KINDS}{RELATION_KINDS}");
    let dir = dir_with(&[("1_kinds.sql", all.as_bytes())]);
    migrate(&db.url, dir.path(), None).expect_code(0);
    let stored = psql(&db.url, "SELECT schema_objects FROM _migrations_lease");
    let out = run(bin_at(&db.url, dir.path()).args(["schema", "--json"]));
    out.expect_code(0);
    let start = out.stdout.find('{').expect("JSON");
    let json: serde_json::Value = serde_json::from_str(&out.stdout[start..]).expect("JSON");
    let mut lines = Vec::new();
    for o in json["objects"].as_array().expect("objects") {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for (part, value) in o["parts"].as_object().expect("parts") {
            h.update(format!("{part}: {}\n", value.as_str().unwrap()));
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        lines.push(format!(
            "{} {}\t{}",
            o["kind"].as_str().unwrap(),
            o["name"].as_str().unwrap(),
            &hex[..16]
        ));
    }
    assert!(lines.len() > 20, "{lines:?}");
    assert_eq!(stored.trim_end(), lines.join("\n"));
}

#[test]
fn hand_changes_are_caught_on_either_server() {
    // Portable DDL: on CockroachDB (in the workflow) this runs the client-read path.
    let db = fresh_db("drift_portable");
    migrate(&db.url, files(false).path(), None).expect_code(0);
    assert_eq!(drift_of(&db.url, files(false).path()), None);
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    let drift = drift_of(&db.url, files(false).path()).expect("a schema_drift disagreement");
    assert!(drift["changes"].to_string().contains("by_hand"), "{drift}");
    let dir = files(true);
    migrate(&db.url, dir.path(), Some("refuse")).expect_code(32);
    assert!(!table_exists(&db, "orders"), "nothing applied");
    migrate(&db.url, dir.path(), None).expect_code(0);
    assert!(table_exists(&db, "orders"));
    assert_eq!(drift_of(&db.url, dir.path()), None);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn refuse_exits_32_with_nothing_applied_and_warn_goes_on() {
    let db = fresh_db("drift_on_drift");
    migrate(&db.url, files(false).path(), None).expect_code(0);
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    let dir = files(true);
    let out = migrate(&db.url, dir.path(), Some("refuse"));
    out.expect_code(32);
    assert!(
        out.stderr.contains("by_hand") || out.stdout.contains("by_hand"),
        "{out:?}"
    );
    assert!(!table_exists(&db, "orders"), "nothing applied");
    let out = migrate(&db.url, dir.path(), Some("bogus"));
    out.expect_code(20);
    assert!(out.stderr.contains("MIGRATE_ON_DRIFT") || out.stdout.contains("MIGRATE_ON_DRIFT"));
    let out = migrate(&db.url, dir.path(), Some("warn"));
    out.expect_code(0);
    let warned = out.events_named("schema.drift");
    assert_eq!(warned.len(), 1, "{out:?}");
    assert!(warned[0].to_string().contains("by_hand"), "{warned:?}");
    assert!(table_exists(&db, "orders"));
    // The run stored the new state, hand change included: no drift after it.
    assert_eq!(drift_of(&db.url, dir.path()), None);
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn a_rollback_stores_the_new_state() {
    let db = fresh_db("drift_rollback");
    let dir = files(true);
    migrate(&db.url, dir.path(), None).expect_code(0);
    run(bin_at(&db.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(["rollback", "--count", "1"]))
    .expect_code(0);
    assert!(!table_exists(&db, "orders"));
    assert_eq!(drift_of(&db.url, dir.path()), None);
    let stored = psql(&db.url, "SELECT schema_version FROM _migrations_lease");
    assert_eq!(stored.trim(), "1");
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    assert!(drift_of(&db.url, dir.path()).is_some());
}

#[test]
fn a_no_op_migrate_sends_no_snapshot_query_and_reads_no_undo_text() {
    let server = dressed_server();
    let d = server.plain("drift_noop");
    let dir = files(false);
    migrate(&d.url, dir.path(), None).expect_code(0);
    let snapshot_queries = |from: usize| {
        server.statements(&d.name)[from..]
            .iter()
            .filter(|l| {
                is_sent(l)
                    && (l.text.contains("pg_get_")
                        || (l.text.contains("schema_version") || l.text.contains("schema_objects")))
            })
            .count()
    };
    let with_work = snapshot_queries(0);
    assert!(with_work > 0, "the run with work took a snapshot");
    let before = server.statements(&d.name).len();
    migrate(&d.url, dir.path(), None).expect_code(0);
    assert!(
        server.statements(&d.name).len() > before,
        "the no-op run was logged"
    );
    assert_eq!(snapshot_queries(before), 0);
    // Nor the undo texts: only rollback planning fetches them.
    let undo_texts = |from: usize| {
        server.statements(&d.name)[from..]
            .iter()
            .filter(|l| is_sent(l) && l.text.contains("undo_sql, undo_no_transaction"))
            .count()
    };
    assert_eq!(undo_texts(before), 0, "a no-op reads no undo text");
    let before = server.statements(&d.name).len();
    run(bin_at(&d.url, dir.path())
        .env("MIGRATE_WAIT_TIMEOUT", "10s")
        .args(["rollback", "--count", "1"]))
    .expect_code(0);
    assert!(undo_texts(before) > 0, "a rollback reads the undo texts");
}

#[test]
fn a_lease_table_without_the_schema_columns_gets_them_at_the_next_run_with_work() {
    let db = fresh_db("drift_old_lease");
    migrate(&db.url, files(false).path(), None).expect_code(0);
    for c in ["schema_version", "schema_hash", "schema_objects"] {
        psql(
            &db.url,
            &format!("ALTER TABLE _migrations_lease DROP COLUMN {c}"),
        );
    }
    // status only reads: no drift, no error, nothing added.
    assert_eq!(drift_of(&db.url, files(false).path()), None);
    let dir = files(true);
    migrate(&db.url, dir.path(), None).expect_code(0);
    let stored = psql(&db.url, "SELECT schema_version FROM _migrations_lease");
    assert_eq!(stored.trim(), "2");
    psql(&db.url, "CREATE TABLE by_hand (x INT)");
    assert!(drift_of(&db.url, dir.path()).is_some());
}

#[test]
#[cfg_attr(
    not(crdb_test_server = "postgres"),
    ignore = "needs PostgreSQL: the hand changes are its DDL"
)]
fn a_schema_targets_snapshot_and_drift_are_its_own_schemas() {
    let db = fresh_db("drift_scoped");
    psql(&db.url, "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b");
    let url = |schema: &str| format!("{}&options=-c%20search_path%3D{schema}", db.url);
    let dir = files(false);
    migrate(&url("tenant_a"), dir.path(), None).expect_code(0);
    migrate(&url("tenant_b"), dir.path(), None).expect_code(0);
    let mut c = bin_at(&url("tenant_a"), dir.path());
    let out = run(c.env("MIGRATE_WAIT_TIMEOUT", "10s").arg("schema"));
    out.expect_code(0);
    assert!(out.stdout.contains("tenant_a.accounts"), "{out:?}");
    assert!(!out.stdout.contains("tenant_b"), "{out:?}");
    // A neighbour's hand change is the neighbour's drift, not this tenant's.
    psql(&db.url, "CREATE TABLE tenant_b.by_hand (x INT)");
    assert_eq!(drift_of(&url("tenant_a"), dir.path()), None);
    let drift = drift_of(&url("tenant_b"), dir.path()).expect("tenant_b drifted");
    assert!(drift.to_string().contains("tenant_b.by_hand"), "{drift}");
}

//! Helpers several test files share: migration directories writing into the side-effect table
//! `effects`, the binary with a holder name and wait timeout, the ledger's versions (and
//! `version:status` rows) and the path of a checked-in fixture.
//!
//! Use them as `support::fixtures::name` (or `use support::fixtures::{…}`). Helpers that only
//! look alike but run other SQL stay in their test files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{TestDb, bin_at, psql};

/// The body of migration `v`: a table of its own (`t_<v>`) and its side-effect row in
/// `effects`, then `extra`; the undo drops both.
pub fn body(v: i64, extra: &str) -> String {
    format!(
        "CREATE TABLE t_{v} (id INT);\nINSERT INTO effects (version) VALUES ({v});\n{extra}\n\
         -- @UNDO\nDROP TABLE t_{v};\nDELETE FROM effects WHERE version = {v};\n"
    )
}

/// Writes migration `v` (`<v>_m<v>.sql`, [`body`] with `extra`) into `dir`.
pub fn write_migration(dir: &Path, v: i64, extra: &str) {
    fs::write(dir.join(format!("{v}_m{v}.sql")), body(v, extra)).expect("write migration");
}

/// A migrations directory with versions `1..=n`; `extra(v)` is appended to each body.
pub fn migrations(n: i64, extra: impl Fn(i64) -> String) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for v in 1..=n {
        write_migration(dir.path(), v, &extra(v));
    }
    dir
}

/// The binary against `url` with `dir`, `MIGRATE_HOLDER=holder` and
/// `MIGRATE_WAIT_TIMEOUT=wait_timeout`.
pub fn cmd(url: &str, dir: &Path, holder: &str, wait_timeout: &str) -> Command {
    let mut c = bin_at(url, dir);
    c.env("MIGRATE_HOLDER", holder)
        .env("MIGRATE_WAIT_TIMEOUT", wait_timeout);
    c
}

/// The ledger's versions, ascending and comma-separated; empty when it has no rows.
pub fn versions(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM _migrations",
    )
}

/// The ledger's rows as `version:status`, ascending and comma-separated; empty when none.
pub fn ledger_rows(db: &TestDb) -> String {
    psql(
        &db.url,
        "SELECT coalesce(string_agg(version || ':' || status, ',' ORDER BY version), '') FROM _migrations",
    )
}

/// `tests/fixtures/<set>/<rel>` in this crate.
pub fn fixture(set: &str, rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set)
        .join(rel)
}

/// Flyway's history table as its `createMetaDataTable.sql` for PostgreSQL makes it.
pub const FLYWAY_HISTORY_TABLE: &str = "CREATE TABLE flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INT,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INT NOT NULL,
    success BOOLEAN NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank));
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);";

/// A targets file for `--targets` / `MIGRATE_TARGETS_FILE`, one line each.
pub fn targets_file(lines: &[&str]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("targets file");
    std::io::Write::write_all(&mut f, lines.join("\n").as_bytes()).expect("write targets");
    f
}

/// The binary over the targets of `file` with `DATABASE_URL` = `url`.
pub fn fleet_cmd(url: &str, dir: &Path, file: &Path) -> Command {
    let mut cmd = bin_at(url, dir);
    cmd.env("MIGRATE_TARGETS_FILE", file)
        .env("MIGRATE_HOLDER", "fleet-test")
        .env("MIGRATE_WAIT_TIMEOUT", "5s");
    cmd
}

//! Other tools' history tables, read for `baseline --from TOOL` and for the "never re-run an
//! existing project" check, and their versions mapped onto the files of an imported directory.
//!
//! # The tables, and how "applied" is decided
//! Each table as its tool creates it (looked up in the current schema search path):
//! - golang-migrate `schema_migrations(version bigint, dirty boolean)`: one row holding the
//!   current version. Every file up to and including it counts as applied
//!   ([`ForeignHistory::applied_through`]). `dirty = true` is a bad row (a migration failed part
//!   way), as is more than one row. A `schema_migrations` without a `dirty` column is not
//!   golang-migrate's.
//! - dbmate `schema_migrations(version varchar)`, no `dirty` column: each row is an applied
//!   version.
//! - goose `goose_db_version(id, version_id, is_applied, tstamp)`: the latest row (highest
//!   `id`) per `version_id` decides: applied when `is_applied`. Goose's own `version_id = 0`
//!   row (written when the table is created) is not a migration.
//! - Flyway `flyway_schema_history(installed_rank, version, description, type, script,
//!   checksum, installed_by, installed_on, execution_time, success)`, read in
//!   `installed_rank` order: `success = false` is a bad row; a `BASELINE` row makes every
//!   version up to it applied (through); `UNDO_*` and `DELETE` rows un-apply their version;
//!   other versioned rows (`SQL`, `JDBC`, ...) apply it; rows without a version (the `SCHEMA`
//!   marker, repeatable migrations) are skipped.
//! - sqlx `_sqlx_migrations(version, description, installed_on, success, checksum,
//!   execution_time)`: each row is applied; `success = false` is a bad row (sqlx calls the
//!   version dirty).
//! - Diesel `__diesel_schema_migrations(version, run_on)`: each row is an applied version.
//! - pop `schema_migration(version)`: each row is an applied version.
//!
//! Versions are kept as strings, in the canonical form the import mapping uses (integers
//! without leading zeros for golang-migrate, goose and sqlx; dotted for Flyway; as stored for
//! the others).

use std::path::Path;

use tokio_postgres::Client;

use super::{Tool, canonical_version, read_mapping, version_key};

/// What another tool's history table says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignHistory {
    /// The tool.
    pub tool: Tool,
    /// The table read.
    pub table: String,
    /// The versions it names as applied, in the order they were applied (canonical strings).
    pub applied: Vec<String>,
    /// Every version up to and including this one counts as applied as well (golang-migrate's
    /// single row, Flyway's `BASELINE`).
    pub applied_through: Option<String>,
    /// Rows that are dirty or failed, described (a baseline must refuse these).
    pub bad: Vec<String>,
    /// Rows that say something (goose's version-0 row and Flyway's schema marker not counted).
    pub rows: usize,
}

/// The table `tool` keeps its history in.
pub fn table_of(tool: Tool) -> &'static str {
    match tool {
        Tool::GolangMigrate | Tool::Dbmate => "schema_migrations",
        Tool::Goose => "goose_db_version",
        Tool::Flyway => "flyway_schema_history",
        Tool::Sqlx => "_sqlx_migrations",
        Tool::Diesel => "__diesel_schema_migrations",
        Tool::Pop => "schema_migration",
    }
}

/// The columns of `table` in the current search path; empty when there is no such table.
async fn columns(client: &Client, table: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT column_name::TEXT FROM information_schema.columns \
             WHERE table_name::TEXT = $1::TEXT AND table_schema::TEXT = ANY(current_schemas(false))",
            &[&table],
        )
        .await?;
    rows.iter().map(|r| r.try_get::<_, String>(0)).collect()
}

/// Reads `tool`'s history table; `None` when this database has no such table (or, for the
/// shared name `schema_migrations`, it is the other tool's: golang-migrate's has `dirty`).
pub async fn read_history(
    client: &Client,
    tool: Tool,
) -> Result<Option<ForeignHistory>, tokio_postgres::Error> {
    let table = table_of(tool);
    let cols = columns(client, table).await?;
    if cols.is_empty() {
        return Ok(None);
    }
    let has_dirty = cols.iter().any(|c| c == "dirty");
    match tool {
        Tool::GolangMigrate if !has_dirty => return Ok(None),
        Tool::Dbmate if has_dirty => return Ok(None),
        _ => {}
    }
    let mut h = ForeignHistory {
        tool,
        table: table.to_string(),
        applied: Vec::new(),
        applied_through: None,
        bad: Vec::new(),
        rows: 0,
    };
    match tool {
        Tool::GolangMigrate => golang_migrate(client, &mut h).await?,
        Tool::Dbmate | Tool::Diesel | Tool::Pop => version_rows(client, &mut h).await?,
        Tool::Sqlx => sqlx(client, &mut h).await?,
        Tool::Goose => goose(client, &mut h).await?,
        Tool::Flyway => flyway(client, &mut h).await?,
    }
    Ok(Some(h))
}

/// Fills `h` from GolangMigrate's table.
async fn golang_migrate(
    client: &Client,
    h: &mut ForeignHistory,
) -> Result<(), tokio_postgres::Error> {
    let tool = h.tool;
    let canon = |v: &str| canonical_version(tool, v).unwrap_or_else(|| v.to_string());
    let rows = client
        .query("SELECT version::TEXT, dirty FROM schema_migrations", &[])
        .await?;
    h.rows = rows.len();
    if rows.len() > 1 {
        h.bad.push(format!(
            "schema_migrations has {} rows; golang-migrate keeps exactly one",
            rows.len()
        ));
    }
    for r in &rows {
        let v: String = r.try_get(0)?;
        let dirty: bool = r.try_get(1)?;
        let v = canon(&v);
        if dirty {
            h.bad.push(format!(
                "version {v} is dirty (golang-migrate's mark of a migration that failed \
                 part way); fix the database and clear the mark with golang-migrate's \
                 `force` first"
            ));
        }
        h.applied.push(v.clone());
        h.applied_through = Some(v);
    }
    Ok(())
}

/// Fills `h` from Dbmate, Diesel, Pop's table.
async fn version_rows(
    client: &Client,
    h: &mut ForeignHistory,
) -> Result<(), tokio_postgres::Error> {
    let tool = h.tool;
    let canon = |v: &str| canonical_version(tool, v).unwrap_or_else(|| v.to_string());
    let rows = client
        .query(
            &format!("SELECT version::TEXT FROM {} ORDER BY version", h.table),
            &[],
        )
        .await?;
    h.rows = rows.len();
    for r in &rows {
        let v: String = r.try_get(0)?;
        h.applied.push(canon(&v));
    }
    Ok(())
}

/// Fills `h` from Sqlx's table.
async fn sqlx(client: &Client, h: &mut ForeignHistory) -> Result<(), tokio_postgres::Error> {
    let tool = h.tool;
    let canon = |v: &str| canonical_version(tool, v).unwrap_or_else(|| v.to_string());
    let rows = client
        .query(
            "SELECT version::TEXT, success FROM _sqlx_migrations ORDER BY version",
            &[],
        )
        .await?;
    h.rows = rows.len();
    for r in &rows {
        let v = canon(&r.try_get::<_, String>(0)?);
        if r.try_get::<_, bool>(1)? {
            h.applied.push(v);
        } else {
            h.bad.push(format!(
                "version {v} has success = false (sqlx: a failed or partly applied \
                 migration, \"dirty\")"
            ));
        }
    }
    Ok(())
}

/// Fills `h` from Goose's table.
async fn goose(client: &Client, h: &mut ForeignHistory) -> Result<(), tokio_postgres::Error> {
    let tool = h.tool;
    let canon = |v: &str| canonical_version(tool, v).unwrap_or_else(|| v.to_string());
    let rows = client
        .query(
            "SELECT id::INT8, version_id::TEXT, is_applied FROM goose_db_version \
             ORDER BY id",
            &[],
        )
        .await?;
    // version -> (deciding row id, applied)
    let mut latest: std::collections::BTreeMap<String, (i64, bool)> =
        std::collections::BTreeMap::new();
    for r in &rows {
        let id: i64 = r.try_get(0)?;
        let v = canon(&r.try_get::<_, String>(1)?);
        if v == "0" {
            continue;
        }
        h.rows += 1;
        latest.insert(v, (id, r.try_get::<_, bool>(2)?));
    }
    let mut applied: Vec<(i64, String)> = latest
        .into_iter()
        .filter(|(_, (_, a))| *a)
        .map(|(v, (id, _))| (id, v))
        .collect();
    applied.sort();
    h.applied = applied.into_iter().map(|(_, v)| v).collect();
    Ok(())
}

/// Fills `h` from Flyway's table.
async fn flyway(client: &Client, h: &mut ForeignHistory) -> Result<(), tokio_postgres::Error> {
    let tool = h.tool;
    let canon = |v: &str| canonical_version(tool, v).unwrap_or_else(|| v.to_string());
    let rows = client
        .query(
            "SELECT installed_rank::INT8, version::TEXT, type::TEXT, script::TEXT, success \
             FROM flyway_schema_history ORDER BY installed_rank",
            &[],
        )
        .await?;
    for r in &rows {
        let rank: i64 = r.try_get(0)?;
        let version: Option<String> = r.try_get(1)?;
        let kind: String = r.try_get::<_, Option<String>>(2)?.unwrap_or_default();
        let script: String = r.try_get::<_, Option<String>>(3)?.unwrap_or_default();
        let success: bool = r.try_get(4)?;
        let Some(version) = version.filter(|v| !v.trim().is_empty()) else {
            continue; // the schema marker, repeatable migrations
        };
        h.rows += 1;
        let v = canon(&version);
        if !success {
            h.bad.push(format!(
                "installed_rank {rank}: version {v} ({script}) has success = false (a \
                 failed migration); fix it and run Flyway's `repair` first"
            ));
            continue;
        }
        let upper = kind.to_ascii_uppercase();
        if upper == "BASELINE" {
            h.applied_through = Some(v);
        } else if upper.starts_with("UNDO") || upper == "DELETE" {
            h.applied.retain(|a| a != &v);
        } else if !h.applied.contains(&v) {
            h.applied.push(v);
        }
    }
    Ok(())
}

/// The statement listing which of the tools' history tables exist in the search path.
pub fn existing_tables_sql() -> String {
    let mut names: Vec<&str> = Tool::ALL.iter().map(|t| table_of(*t)).collect();
    names.dedup();
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // pg_catalog rather than information_schema: the same answer, a fraction of the work on
    // PostgreSQL (this runs in every migrate's first flight).
    format!(
        "SELECT c.relname::TEXT FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname::TEXT = ANY(current_schemas(false)) AND c.relkind IN ('r', 'p', 'v') \
         AND c.relname::TEXT IN ({list})"
    )
}

/// Which of the tools' history tables exist in the search path (one round trip).
pub async fn existing_tables(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let msgs = client.simple_query(&existing_tables_sql()).await?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect())
}

/// The first tool (in [`Tool::ALL`] order) whose history table exists here with rows that say
/// something: `(tool, table, rows)`. For the check that `migrate` never re-runs a project
/// another tool manages.
///
/// One round trip when none of the tables exists (the usual first run): which of them exist is
/// asked first, in one simple query.
pub async fn any_foreign_history(
    client: &Client,
) -> Result<Option<(Tool, String, usize)>, tokio_postgres::Error> {
    let present = existing_tables(client).await?;
    any_foreign_history_among(client, &present).await
}

/// [`any_foreign_history`], given which history tables exist (from [`existing_tables`], which
/// a caller can pipeline with its own first query).
pub async fn any_foreign_history_among(
    client: &Client,
    present: &[String],
) -> Result<Option<(Tool, String, usize)>, tokio_postgres::Error> {
    for tool in Tool::ALL {
        if !present.iter().any(|t| t == table_of(tool)) {
            continue;
        }
        if let Some(h) = read_history(client, tool).await?
            && h.rows > 0
        {
            return Ok(Some((tool, h.table, h.rows)));
        }
    }
    Ok(None)
}

/// Our versions for what `history` says is applied, ascending, using `dir`'s import mapping
/// file ([`super::MAPPING_FILE`]) when there is one, else reading the history's versions as
/// ours. The error lists every version with no file here (and a mapping written for another
/// tool). `history.bad` is not looked at: the caller refuses those first.
pub fn map_versions(
    dir: &Path,
    history: &ForeignHistory,
    tool: Tool,
) -> Result<Vec<i64>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let missing = |v: &str, how: &str| {
        format!(
            "{} says version {v} is applied, but no migration file in {} has it ({how})",
            history.table,
            dir.display()
        )
    };
    // golang-migrate's single row names the current version, which must have a file; Flyway's
    // baseline version usually has none.
    let through_needs_file = tool == Tool::GolangMigrate;
    match read_mapping(dir) {
        Err(e) => return Err(vec![e]),
        Ok(Some(super::Mapping {
            tool: mapped_tool,
            rows,
        })) => {
            if mapped_tool != tool {
                return Err(vec![format!(
                    "{} was written by an import from {mapped_tool}, not {tool}",
                    dir.join(super::MAPPING_FILE).display()
                )]);
            }
            let how = format!("not in {}", super::MAPPING_FILE);
            for v in &history.applied {
                match rows.iter().find(|(o, _)| o == v) {
                    Some((_, ours)) => out.push(*ours),
                    None => errors.push(missing(v, &how)),
                }
            }
            if let Some(t) = &history.applied_through {
                let limit = version_key(tool, t);
                if through_needs_file && !rows.iter().any(|(o, _)| o == t) {
                    errors.push(missing(t, &how));
                }
                out.extend(
                    rows.iter()
                        .filter(|(o, _)| version_key(tool, o) <= limit)
                        .map(|(_, ours)| *ours),
                );
            }
        }
        Ok(None) => {
            let files: Vec<i64> = match crate::source::load(dir, None) {
                Ok(set) => set.iter().map(|m| m.version).collect(),
                Err(problems) => return Err(problems.iter().map(|p| p.to_string()).collect()),
            };
            let how = format!("and there is no {} to map it", super::MAPPING_FILE);
            for v in &history.applied {
                match v.parse::<i64>().ok().filter(|n| files.contains(n)) {
                    Some(n) => out.push(n),
                    None => errors.push(missing(v, &how)),
                }
            }
            if let Some(t) = &history.applied_through {
                match t.parse::<i64>() {
                    Ok(limit) => {
                        if through_needs_file && !files.contains(&limit) {
                            errors.push(missing(t, &how));
                        }
                        out.extend(files.iter().filter(|&&f| f <= limit));
                    }
                    Err(_) => errors.push(missing(t, &how)),
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(tool: Tool, applied: &[&str], through: Option<&str>) -> ForeignHistory {
        ForeignHistory {
            tool,
            table: table_of(tool).into(),
            applied: applied.iter().map(|s| s.to_string()).collect(),
            applied_through: through.map(str::to_string),
            bad: vec![],
            rows: applied.len(),
        }
    }

    #[test]
    fn map_with_mapping_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(super::super::MAPPING_FILE),
            "# c\ntool\tflyway\noriginal_version\tversion\tfrom\n1\t1\tV1__a.sql\n1.1\t2\tV1_1__b.sql\n2\t3\tV2__c.sql\n",
        )
        .expect("write");
        let h = history(Tool::Flyway, &["1", "1.1"], None);
        assert_eq!(map_versions(dir.path(), &h, Tool::Flyway), Ok(vec![1, 2]));
        let h = history(Tool::Flyway, &["2"], Some("1.1"));
        assert_eq!(
            map_versions(dir.path(), &h, Tool::Flyway),
            Ok(vec![1, 2, 3])
        );
        let h = history(Tool::Flyway, &["3"], None);
        let e = map_versions(dir.path(), &h, Tool::Flyway).expect_err("no file");
        assert!(e[0].contains("version 3"), "{e:?}");
        let e = map_versions(dir.path(), &h, Tool::Goose).expect_err("other tool");
        assert!(e[0].contains("not goose"), "{e:?}");
    }

    #[test]
    fn map_without_mapping_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for v in [1, 2, 5] {
            std::fs::write(dir.path().join(format!("{v}_m.sql")), "SELECT 1;").expect("write");
        }
        let h = history(Tool::GolangMigrate, &["2"], Some("2"));
        assert_eq!(
            map_versions(dir.path(), &h, Tool::GolangMigrate),
            Ok(vec![1, 2])
        );
        let h = history(Tool::GolangMigrate, &["3"], Some("3"));
        let e = map_versions(dir.path(), &h, Tool::GolangMigrate).expect_err("no file 3");
        assert!(e.iter().all(|m| m.contains("version 3")), "{e:?}");
        let h = history(Tool::Dbmate, &["5", "1"], None);
        assert_eq!(map_versions(dir.path(), &h, Tool::Dbmate), Ok(vec![1, 5]));
    }
}

#[cfg(test)]
mod sql_tests {
    use super::*;

    #[test]
    fn one_query_tells_which_history_tables_exist() {
        assert_eq!(
            existing_tables_sql(),
            "SELECT c.relname::TEXT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname::TEXT = ANY(current_schemas(false)) AND c.relkind IN ('r', 'p', 'v') AND c.relname::TEXT IN ('schema_migrations', 'goose_db_version', 'flyway_schema_history', '_sqlx_migrations', '__diesel_schema_migrations', 'schema_migration')"
        );
    }
}

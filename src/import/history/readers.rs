//! The per-tool readers of a history table: each fills a [`ForeignHistory`] from its tool's
//! rows, as the `history` module describes.

use tokio_postgres::Client;

use super::ForeignHistory;
use crate::import::canonical_version;

/// Fills `h` from GolangMigrate's table.
pub(super) async fn golang_migrate(
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
pub(super) async fn version_rows(
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
pub(super) async fn sqlx(
    client: &Client,
    h: &mut ForeignHistory,
) -> Result<(), tokio_postgres::Error> {
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
pub(super) async fn goose(
    client: &Client,
    h: &mut ForeignHistory,
) -> Result<(), tokio_postgres::Error> {
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
pub(super) async fn flyway(
    client: &Client,
    h: &mut ForeignHistory,
) -> Result<(), tokio_postgres::Error> {
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

//! The CockroachDB reader: `pg_dump` does not work against CockroachDB, so the schema comes
//! from its own `SHOW CREATE ALL SCHEMAS / TYPES / TABLES` (v22.1 and later; ALL TABLES also
//! returns the `ALTER TABLE ... ADD CONSTRAINT` statements that follow the CREATEs), and
//! `SHOW CREATE ALL ROUTINES / TRIGGERS` from v25.3 (cockroachdb/cockroach, FeatureShowCreateAll
//! Routines/Triggers). Before v25.3 routines come from `pg_proc` (named by argument type oids)
//! and triggers are not read. The version is taken from `version()`, not by trying the
//! statement: a failed statement would abort the transaction an undo is checked in. Each
//! table is cut into its elements (one a line in CockroachDB's formatting) so that column order
//! does not count. Left out: what CockroachDB manages itself (the hidden `crdb_region` column,
//! the `crdb_internal_region` type, `LOCALITY` clauses and zone configurations), `VALIDATE
//! CONSTRAINT` statements, and our own ledger and lease tables.

use tokio_postgres::Client;

use super::Snapshot;
use crate::error::{Error, Result};

pub(super) async fn read(client: &Client, version: &str, ours: &[String]) -> Result<Snapshot> {
    let mut snapshot = Snapshot::default();
    for show in [
        "SHOW CREATE ALL SCHEMAS",
        "SHOW CREATE ALL TYPES",
        "SHOW CREATE ALL TABLES",
    ] {
        for statement in show_create(client, show).await? {
            add_statement(&mut snapshot, &statement, ours);
        }
    }
    if at_least(version, (25, 3)) {
        for show in ["SHOW CREATE ALL ROUTINES", "SHOW CREATE ALL TRIGGERS"] {
            for statement in show_create(client, show).await? {
                add_statement(&mut snapshot, &statement, ours);
            }
        }
    } else {
        routines_from_pg_proc(client, &mut snapshot).await?;
    }
    Ok(snapshot)
}

/// Whether `version()` (e.g. `CockroachDB CCL v25.3.1 (...)`) is at least `want`.
fn at_least(version: &str, want: (u32, u32)) -> bool {
    let found = version.split_whitespace().find_map(|w| {
        let mut parts = w.strip_prefix('v')?.split(['.', '-']);
        Some((
            parts.next()?.parse::<u32>().ok()?,
            parts.next()?.parse::<u32>().ok()?,
        ))
    });
    found.is_some_and(|v| v >= want)
}

/// The statements of one `SHOW CREATE ALL ...`: its `create_statement` column, split at `;`
/// line ends (older versions return ALL TABLES as one row, the FK `VALIDATE` statements after
/// a `--` comment line).
async fn show_create(client: &Client, show: &str) -> Result<Vec<String>> {
    let rows = client
        .simple_query(show)
        .await
        .map_err(|e| Error::db(format!("reading the schema ({show})"), e))?;
    let mut out = Vec::new();
    for message in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            let text = row
                .try_get("create_statement")
                .ok()
                .flatten()
                .or_else(|| row.get(0))
                .unwrap_or_default();
            out.extend(
                text.split(";\n")
                    .map(|s| s.trim().trim_end_matches(';').to_string()),
            );
        }
    }
    Ok(out)
}

/// Routines on versions without `SHOW CREATE ALL ROUTINES`: name, arguments and body.
async fn routines_from_pg_proc(client: &Client, snapshot: &mut Snapshot) -> Result<()> {
    let sql = "SELECT n.nspname || '.' || p.proname || '(' || p.proargtypes::STRING || ')', \
               coalesce(p.prosrc, '') FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
               WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension')";
    let rows = client
        .query(sql, &[])
        .await
        .map_err(|e| Error::db("reading the schema (pg_proc)", e))?;
    for row in rows {
        let name: String = row.get(0);
        snapshot.insert("function", &name, [("definition".into(), row.get(1))]);
    }
    Ok(())
}

fn add_statement(snapshot: &mut Snapshot, statement: &str, ours: &[String]) {
    let upper = statement.to_ascii_uppercase();
    if statement.is_empty()
        || upper.contains("CONFIGURE ZONE")
        || upper.contains("VALIDATE CONSTRAINT")
    {
        return;
    }
    if upper.starts_with("COMMENT ON ") {
        return add_comment(snapshot, &statement["COMMENT ON ".len()..], ours);
    }
    let kinds = [
        ("CREATE TABLE ", "table"),
        ("CREATE MATERIALIZED VIEW ", "materialized view"),
        ("CREATE VIEW ", "view"),
        ("CREATE SEQUENCE ", "sequence"),
        ("CREATE TYPE ", "type"),
        ("CREATE SCHEMA ", "schema"),
        ("CREATE FUNCTION ", "function"),
        ("CREATE OR REPLACE FUNCTION ", "function"),
        ("CREATE PROCEDURE ", "procedure"),
        ("CREATE OR REPLACE PROCEDURE ", "procedure"),
        ("CREATE TRIGGER ", "trigger"),
        ("ALTER TABLE ", "table"),
    ];
    let Some((prefix, kind)) = kinds.iter().find(|(p, _)| upper.starts_with(p)) else {
        return;
    };
    let rest = &statement[prefix.len()..];
    let name = object_name(rest);
    let bare = name.rsplit('.').next().unwrap_or(&name).trim_matches('"');
    if ours.iter().any(|o| o == bare) || name.contains("crdb_internal_region") {
        return;
    }
    match (*prefix, *kind) {
        ("CREATE TABLE ", _) => snapshot.insert(kind, &name, table_parts(rest)),
        ("ALTER TABLE ", _) => snapshot.insert(kind, &name, alter_parts(rest)),
        (
            "CREATE FUNCTION "
            | "CREATE OR REPLACE FUNCTION "
            | "CREATE PROCEDURE "
            | "CREATE OR REPLACE PROCEDURE ",
            _,
        ) => {
            let signature = rest.split(')').next().unwrap_or(rest);
            snapshot.insert(
                kind,
                &format!("{signature})"),
                [("definition".into(), statement.into())],
            );
        }
        ("CREATE TRIGGER ", _) => {
            let table = upper
                .find(" ON ")
                .map(|i| object_name(&statement[i + 4..]))
                .unwrap_or_default();
            snapshot.insert(
                kind,
                &format!("{name} on {table}"),
                [("definition".into(), statement.into())],
            );
        }
        _ => snapshot.insert(kind, &name, [("definition".into(), statement.into())]),
    }
}

/// `COMMENT ON TABLE t / COLUMN t.c / INDEX t@i / CONSTRAINT c ON t IS '...'` (which SHOW CREATE
/// writes after its table) as a part of table `t`.
fn add_comment(snapshot: &mut Snapshot, rest: &str, ours: &[String]) {
    let Some((what, target)) = rest.split_once(' ') else {
        return;
    };
    let name = object_name(target);
    let comment = target
        .split_once(" IS ")
        .map(|(_, c)| c.trim())
        .unwrap_or_default();
    let (table, part) = match what.to_ascii_uppercase().as_str() {
        "TABLE" => (name.clone(), "comment".to_string()),
        "COLUMN" => match name.rsplit_once('.') {
            Some((table, column)) => (table.to_string(), format!("comment on column {column}")),
            None => return,
        },
        "INDEX" => match name.split_once('@') {
            Some((table, index)) => (table.to_string(), format!("comment on index {index}")),
            None => return,
        },
        "CONSTRAINT" => {
            let after = &target[name.len()..];
            let on = after.trim_start().strip_prefix("ON ").unwrap_or("");
            (object_name(on), format!("comment on constraint {name}"))
        }
        _ => return,
    };
    let bare = table.rsplit('.').next().unwrap_or(&table).trim_matches('"');
    if !ours.iter().any(|o| o == bare) {
        snapshot.insert("table", &table, [(part, comment.to_string())]);
    }
}

/// The (possibly quoted, possibly qualified) name at the start of `rest`.
fn object_name(rest: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            c if !quoted && (c.is_whitespace() || c == '(' || c == ';') => break,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A table's elements, one a line: columns, constraints, indexes, families, trailing options.
fn table_parts(rest: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    for line in rest.lines().skip(1) {
        let element = line.trim().trim_end_matches(',');
        if element.starts_with(')') {
            let options = element.trim_start_matches(')').trim();
            let options = options.split("LOCALITY").next().unwrap_or("").trim();
            if !options.is_empty() {
                parts.push(("options".into(), options.to_string()));
            }
            continue;
        }
        if let Some(part) = element_part(element) {
            parts.push(part);
        }
    }
    parts
}

fn element_part(element: &str) -> Option<(String, String)> {
    let words: Vec<&str> = element.split_whitespace().collect();
    let (label, name) = match words.as_slice() {
        [] => return None,
        ["CONSTRAINT", name, ..] => ("constraint", *name),
        ["INDEX", name, ..]
        | ["UNIQUE", "INDEX", name, ..]
        | ["INVERTED", "INDEX", name, ..]
        | ["VECTOR", "INDEX", name, ..] => ("index", *name),
        ["FAMILY", name, ..] => return Some((format!("family {name}"), sorted_list(element))),
        [_, ..] => {
            if element.contains("crdb_internal_region") && element.contains("NOT VISIBLE") {
                return None;
            }
            let name = object_name(element);
            let value = element[name.len()..].trim().to_string();
            return Some((format!("column {name}"), value));
        }
    };
    Some((format!("{label} {name}"), element.to_string()))
}

/// `FAMILY f (b, a)` as `(a, b)`: a re-added column joins its family at the end.
fn sorted_list(element: &str) -> String {
    let inner = element
        .split_once('(')
        .map(|(_, r)| r.trim_end_matches(')'))
        .unwrap_or("");
    let mut columns: Vec<&str> = inner.split(',').map(str::trim).collect();
    columns.sort_unstable();
    format!("({})", columns.join(", "))
}

/// `ALTER TABLE t ADD CONSTRAINT name ...` as the constraint part of table `t`.
fn alter_parts(rest: &str) -> Vec<(String, String)> {
    let after = rest[object_name(rest).len()..].trim();
    let words: Vec<&str> = after.split_whitespace().collect();
    match words.as_slice() {
        ["ADD", "CONSTRAINT", name, ..] => vec![(
            format!("constraint {name}"),
            after["ADD ".len()..].to_string(),
        )],
        _ => vec![("alter".into(), after.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "CREATE TABLE public.users (\n\tid INT8 NOT NULL,\n\tname STRING NULL DEFAULT 'x':::STRING,\n\tcrdb_region public.crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::public.crdb_internal_region,\n\tCONSTRAINT users_pkey PRIMARY KEY (id ASC),\n\tUNIQUE INDEX users_name_key (name ASC),\n\tFAMILY \"primary\" (name, id)\n) LOCALITY REGIONAL BY ROW";

    #[test]
    fn routines_and_triggers_are_shown_from_v25_3() {
        assert!(at_least(
            "CockroachDB CCL v25.3.1 (x86_64-pc-linux-gnu)",
            (25, 3)
        ));
        assert!(at_least("CockroachDB CCL v26.1.0-alpha.1 (x)", (25, 3)));
        assert!(!at_least("CockroachDB CCL v25.2.4 (x)", (25, 3)));
        assert!(!at_least("CockroachDB CCL v24.3.0 (x)", (25, 3)));
        let mut s = Snapshot::default();
        add_statement(
            &mut s,
            "CREATE TRIGGER tr BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION f()",
            &[],
        );
        add_statement(
            &mut s,
            "CREATE FUNCTION public.f(x INT8)\n\tRETURNS INT8\n\tLANGUAGE SQL\n\tAS $$SELECT x$$",
            &[],
        );
        assert!(
            s.text().starts_with("function public.f(x INT8)\n"),
            "{}",
            s.text()
        );
        assert!(
            s.text().contains("trigger tr on public.t\n"),
            "{}",
            s.text()
        );
    }

    #[test]
    fn tables_are_cut_into_elements_without_region_parts() {
        let mut s = Snapshot::default();
        let ours = ["_migrations".to_string(), "_migrations_lease".to_string()];
        add_statement(&mut s, TABLE, &ours);
        add_statement(
            &mut s,
            "ALTER TABLE public.users ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES public.x(id)",
            &ours,
        );
        add_statement(
            &mut s,
            "ALTER TABLE public.users VALIDATE CONSTRAINT fk",
            &ours,
        );
        add_statement(
            &mut s,
            "CREATE TABLE public._migrations (\n\tversion INT8 NOT NULL\n)",
            &ours,
        );
        add_statement(
            &mut s,
            "COMMENT ON COLUMN public.users.name IS 'shown'",
            &ours,
        );
        add_statement(
            &mut s,
            "CREATE TYPE public.crdb_internal_region AS ENUM ('us-east1')",
            &ours,
        );
        assert_eq!(
            s.text(),
            "table public.users\n  column id: INT8 NOT NULL\n  column name: STRING NULL DEFAULT 'x':::STRING\n  \
             comment on column name: 'shown'\n  constraint fk: CONSTRAINT fk FOREIGN KEY (id) REFERENCES public.x(id)\n  \
             constraint users_pkey: CONSTRAINT users_pkey PRIMARY KEY (id ASC)\n  \
             family \"primary\": (id, name)\n  index users_name_key: UNIQUE INDEX users_name_key (name ASC)\n"
        );
    }
}

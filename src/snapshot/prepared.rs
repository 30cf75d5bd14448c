//! Snapshots read again and again on one connection (`test` reads two per migration): the
//! PostgreSQL snapshot statements are prepared once, with our own tables written into them
//! as a literal, so each later snapshot is executed without parsing or planning again. On a
//! database of a few hundred objects planning the largest statement took longer than running
//! it. CockroachDB's snapshot is not planned this way and is read as usual.

use tokio_postgres::{Client, Statement};

use super::{Snapshot, ours, postgres};
use crate::connect::{Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::store::Tables;

/// A connection's prepared snapshot statements (none on CockroachDB).
pub struct Reader {
    statements: Option<Vec<Statement>>,
}

impl Reader {
    /// Prepares the snapshot statements on `client` (on PostgreSQL).
    pub async fn prepare(client: &Client, server: &ServerInfo, tables: &Tables) -> Result<Reader> {
        if server.flavour != Flavour::PostgreSQL {
            return Ok(Reader { statements: None });
        }
        let ours = text_array(&ours(tables));
        let sqls: Vec<String> = postgres::snapshot_sqls(tables.schemas())
            .iter()
            .map(|sql| sql.replace("$1", &ours))
            .collect();
        let prepared =
            crate::pipeline::in_order(sqls.iter().map(|s| client.prepare(s)).collect()).await;
        let statements = prepared
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.map_err(|e| Error::db(format!("preparing the schema read (query {i})"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Reader {
            statements: Some(statements),
        })
    }

    /// The live schema, as [`Snapshot::read`] gives it.
    pub async fn read(
        &self,
        client: &Client,
        server: &ServerInfo,
        tables: &Tables,
    ) -> Result<Snapshot> {
        let Some(statements) = &self.statements else {
            return Snapshot::read(client, server, tables).await;
        };
        let queries = statements.iter().map(|s| client.query(s, &[])).collect();
        postgres::assemble(crate::pipeline::in_order(queries).await)
    }
}

/// `ARRAY['a', 'b']::text[]`, each name quoted as a string literal.
fn text_array(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    format!("ARRAY[{}]::text[]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::text_array;

    #[test]
    fn names_become_one_quoted_text_array() {
        assert_eq!(
            text_array(&["_m".to_string(), "o'k".to_string()]),
            "ARRAY['_m', 'o''k']::text[]"
        );
    }
}

//! The way back to the forward state when a non-transactional undo left the database in one
//! its forward SQL cannot be applied to again ("already exists"): empty the scratch database
//! and replay the forward SQL of every migration so far. Only on PostgreSQL and only when the
//! database was empty when `test` started and holds no ledger of ours (never with `--force`,
//! which would lose what the database held); otherwise the run stops there.

use tokio_postgres::Client;

use crate::connect::{Flavour, ServerInfo};
use crate::source::Migration;
use crate::store::Tables;

/// Drops every schema of the database (extensions and everything in them go with them), the
/// event triggers, publications and foreign-data wrappers, then creates `public` again with
/// the owner, grants and comment it had.
const EMPTY_THE_DATABASE: &str = r#"
DO $crdb_migrate_reset$
DECLARE
  owner text; acl aclitem[]; note text; s text; r record;
BEGIN
  SELECT n.nspowner::regrole::text, n.nspacl, obj_description(n.oid, 'pg_namespace')
    INTO owner, acl, note FROM pg_namespace n WHERE n.nspname = 'public';
  FOR s IN SELECT nspname FROM pg_namespace
            WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  FOR s IN SELECT evtname FROM pg_event_trigger LOOP
    EXECUTE format('DROP EVENT TRIGGER %I', s);
  END LOOP;
  FOR s IN SELECT pubname FROM pg_publication LOOP
    EXECUTE format('DROP PUBLICATION %I', s);
  END LOOP;
  FOR s IN SELECT fdwname FROM pg_foreign_data_wrapper LOOP
    EXECUTE format('DROP FOREIGN DATA WRAPPER %I CASCADE', s);
  END LOOP;
  IF owner IS NOT NULL THEN
    EXECUTE format('CREATE SCHEMA public AUTHORIZATION %s', owner);
    FOR r IN SELECT * FROM aclexplode(acl) LOOP
      EXECUTE format('GRANT %s ON SCHEMA public TO %s', r.privilege_type,
        CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE r.grantee::regrole::text END);
    END LOOP;
    EXECUTE format('COMMENT ON SCHEMA public IS %L', note);
  END IF;
END
$crdb_migrate_reset$
"#;

/// Whether this run may rebuild: PostgreSQL, a database that held nothing at the start, and
/// no ledger or lease table of ours (a ledger can hold rows of migrations that created no
/// object; emptying the database would lose them).
pub async fn possible(
    client: &Client,
    server: &ServerInfo,
    tables: &Tables,
    empty_at_start: bool,
) -> bool {
    if server.flavour != Flavour::PostgreSQL || !empty_at_start {
        return false;
    }
    let none = client
        .query_one(
            "SELECT to_regclass($1) IS NULL AND to_regclass($2) IS NULL",
            &[&tables.ledger(), &tables.lease()],
        )
        .await;
    matches!(none.map(|row| row.get::<_, bool>(0)), Ok(true))
}

/// Empties the database and applies the forward SQL of `done` again, in order, each from a
/// fresh session as in the first pass; false when any of it fails (the run then stops).
pub async fn rebuild(client: &Client, server: &ServerInfo, done: &[&Migration]) -> bool {
    if client.batch_execute(EMPTY_THE_DATABASE).await.is_err() {
        return false;
    }
    for m in done {
        let applied = super::apply(client, &m.up_statements, !m.no_transaction).await;
        if applied.is_err() || super::fresh_session(client, server).await.is_err() {
            return false;
        }
    }
    true
}

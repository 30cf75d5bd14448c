//! PostgreSQL's side of progress: one query over the `pg_stat_progress_*` views, restricted to
//! the busy connection's backend pid, and its rows read into [`Sample`].

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use super::{Counter, Sample, fraction};

/// The PostgreSQL progress query: one row per command our backend (`$1`, an `int4`) runs, in
/// one shape: command, phase, relation, then done/total pairs for blocks, tuples, bytes,
/// lockers and partitions (`NULL` where the view has no such counter).
pub(crate) fn postgres_sql() -> &'static str {
    "SELECT command, phase, relid::regclass::text AS relation, \
            blocks_done, blocks_total, tuples_done, tuples_total, \
            NULL::int8 AS bytes_done, NULL::int8 AS bytes_total, \
            lockers_done, lockers_total, partitions_done, partitions_total \
       FROM pg_stat_progress_create_index WHERE pid = $1 \
     UNION ALL \
     SELECT command, phase, relid::regclass::text, \
            heap_blks_scanned, heap_blks_total, heap_tuples_scanned, NULL::int8, \
            NULL::int8, NULL::int8, NULL::int8, NULL::int8, NULL::int8, NULL::int8 \
       FROM pg_stat_progress_cluster WHERE pid = $1 \
     UNION ALL \
     SELECT 'VACUUM', phase, relid::regclass::text, \
            heap_blks_scanned, heap_blks_total, NULL::int8, NULL::int8, \
            NULL::int8, NULL::int8, NULL::int8, NULL::int8, NULL::int8, NULL::int8 \
       FROM pg_stat_progress_vacuum WHERE pid = $1 \
     UNION ALL \
     SELECT 'ANALYZE', phase, relid::regclass::text, \
            sample_blks_scanned, sample_blks_total, NULL::int8, NULL::int8, \
            NULL::int8, NULL::int8, NULL::int8, NULL::int8, child_tables_done, child_tables_total \
       FROM pg_stat_progress_analyze WHERE pid = $1 \
     UNION ALL \
     SELECT command, 'copying', relid::regclass::text, \
            NULL::int8, NULL::int8, tuples_processed, NULL::int8, \
            bytes_processed, bytes_total, NULL::int8, NULL::int8, NULL::int8, NULL::int8 \
       FROM pg_stat_progress_copy WHERE pid = $1"
}

impl Sample {
    /// A PostgreSQL row, from its plain values (the order of [`postgres_sql`]'s columns).
    pub(crate) fn from_pg(
        command: &str,
        phase: &str,
        relation: Option<String>,
        [blocks, tuples, bytes, lockers, partitions]: [Counter; 5],
    ) -> Sample {
        let mut p = Sample {
            command: command.to_string(),
            phase: phase.to_string(),
            relation,
            blocks,
            tuples,
            bytes,
            lockers,
            partitions,
            ..Sample::default()
        };
        p.fraction = p.headline().and_then(|(c, _)| fraction(c));
        p
    }
}

/// The progress of backend `pid`'s commands, read on `client` (a side connection).
pub(super) async fn sample(
    client: &Client,
    pid: i32,
) -> Result<Vec<Sample>, tokio_postgres::Error> {
    let rows = client
        .query_typed(postgres_sql(), &[(&pid, Type::INT4)])
        .await?;
    rows.iter()
        .map(|r| {
            let c = |i: usize| -> Result<Counter, tokio_postgres::Error> {
                Ok(Counter::new(r.try_get(i)?, r.try_get(i + 1)?))
            };
            let command: Option<String> = r.try_get(0)?;
            let phase: Option<String> = r.try_get(1)?;
            Ok(Sample::from_pg(
                command.as_deref().unwrap_or(""),
                phase.as_deref().unwrap_or(""),
                r.try_get(2)?,
                [c(3)?, c(5)?, c(7)?, c(9)?, c(11)?],
            ))
        })
        .collect()
}

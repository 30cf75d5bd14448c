//! `test`: the round trip of every undo on a scratch database. For each migration in order:
//! snapshot, forward SQL, undo, snapshot again; the two must be equal. A transactional undo
//! runs in its own transaction, is checked there and rolled back, so the database is back in
//! the forward state and a failing undo derails nothing. A non-transactional undo runs as it
//! would in a rollback and the forward SQL is then applied again; when that fails (the undo
//! left something behind) the database is rebuilt (`rebuild`) and the run goes on, as a
//! pg_dump comparison that drops and re-creates its database would. The ledger is not written.

mod rebuild;
mod verdict;

use std::time::Instant;

use tokio_postgres::Client;

pub use verdict::{Checked, UndoReport, Verdict};

use crate::connect::{Flavour, ServerInfo};
use crate::error::{Error, Result};
use crate::snapshot::{Reader, Snapshot};
use crate::source::Migration;
use crate::source::split::Statement;
use crate::store::Tables;

/// Checks every migration of `set` on the connected scratch database; refuses one that holds
/// anything but our ledger unless `force`.
pub async fn run(
    client: &Client,
    server: &ServerInfo,
    tables: &Tables,
    set: &[Migration],
    force: bool,
) -> Result<UndoReport> {
    let run_started = Instant::now();
    if server.flavour == Flavour::CockroachDB {
        keep_transactions_whole(client).await?;
    }
    let reader = Reader::prepare(client, server, tables).await?;
    let mut before = reader.read(client, server, tables).await?;
    let held = before.user_objects();
    if !force && !held.is_empty() {
        return Err(Error::Config {
            name: "DATABASE_URL".into(),
            message: format!(
                "test needs an empty scratch database, and this one holds {} object(s) (first: {}); name an empty database, or pass --force",
                held.len(),
                held[0]
            ),
        });
    }
    let can_rebuild = rebuild::possible(client, server, tables, held.is_empty()).await;
    let mut checked = Vec::with_capacity(set.len());
    let mut done: Vec<&Migration> = Vec::with_capacity(set.len());
    let mut stopped = false;
    for m in set {
        let started = Instant::now();
        let verdict = if stopped {
            Verdict::NotRun
        } else {
            let (v, state) = check(client, (server, tables, &reader), m, &before).await?;
            done.push(m);
            stopped = match state {
                State::Forward => false,
                State::Lost => true,
                State::NeedsRebuild => {
                    !(can_rebuild && rebuild::rebuild(client, server, &done).await)
                }
            };
            if !stopped {
                fresh_session(client, server).await?;
                before = reader.read(client, server, tables).await?;
            }
            v
        };
        checked.push(Checked {
            version: m.version,
            file: file_name(m),
            transactional: !m.no_transaction,
            verdict,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(UndoReport {
        migrations: checked,
        duration_ms: run_started.elapsed().as_millis() as u64,
    })
}

/// From v25.1 CockroachDB commits an open transaction before each DDL statement
/// (`autocommit_before_ddl`); turned off, as for migrations, so that an undo checked in a
/// transaction is really rolled back. An older version without the setting does not do it.
async fn keep_transactions_whole(client: &Client) -> Result<()> {
    for sql in crate::flavour::cockroach_settings() {
        match client.batch_execute(sql).await {
            Ok(()) => {}
            Err(e) if crate::sqlstate::is_unknown_setting(&e) => {}
            Err(e) => return Err(Error::db(format!("running `{sql}`"), e)),
        }
    }
    Ok(())
}

fn file_name(m: &Migration) -> String {
    m.path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where a migration's round trip left the database.
enum State {
    /// In its forward state: the run goes on.
    Forward,
    /// A non-transactional undo left it where the forward SQL cannot be applied again.
    NeedsRebuild,
    /// Unknown (the forward SQL or a non-transactional undo failed): the run stops.
    Lost,
}

/// One migration's round trip, and where it left the database.
async fn check(
    client: &Client,
    (server, tables, reader): (&ServerInfo, &Tables, &Reader),
    m: &Migration,
    before: &Snapshot,
) -> Result<(Verdict, State)> {
    if let Err((line, error)) = apply(client, &m.up_statements, !m.no_transaction).await {
        return Ok((Verdict::ForwardFailed { line, error }, State::Lost));
    }
    fresh_session(client, server).await?;
    let Some(undo) = &m.down_statements else {
        return Ok((Verdict::Irreversible, State::Forward));
    };
    if m.no_transaction {
        if let Err((line, error)) = execute(client, undo).await {
            return Ok((Verdict::UndoFailed { line, error }, State::Lost));
        }
        fresh_session(client, server).await?;
        let verdict = compare(before, &reader.read(client, server, tables).await?);
        // An undo that left the forward SQL's objects behind makes its re-application fail
        // ("already exists"): the verdict stands, and the database is rebuilt.
        let state = match apply(client, &m.up_statements, false).await {
            Ok(()) => State::Forward,
            Err(_) => State::NeedsRebuild,
        };
        return Ok((verdict, state));
    }
    sql(client, "BEGIN").await?;
    let ran = match execute(client, undo).await {
        Ok(()) => deferred_checks(client, server, undo).await,
        failed => failed,
    };
    let verdict = match ran {
        Err((line, error)) => Verdict::UndoFailed { line, error },
        Ok(()) => {
            fresh_session(client, server).await?;
            compare(before, &reader.read(client, server, tables).await?)
        }
    };
    sql(client, "ROLLBACK").await?;
    Ok((verdict, State::Forward))
}

/// The checks of deferred constraints an undo's COMMIT would run, run now (the undo is rolled
/// back, never committed): an undo that deletes rows a `DEFERRABLE INITIALLY DEFERRED` foreign
/// key still needs fails here as it would at its COMMIT in a rollback. The failure is given
/// the line of the undo's last statement. On PostgreSQL (CockroachDB defers no constraint).
async fn deferred_checks(
    client: &Client,
    server: &ServerInfo,
    undo: &[Statement],
) -> std::result::Result<(), (usize, String)> {
    if server.flavour != Flavour::PostgreSQL {
        return Ok(());
    }
    client
        .batch_execute("SET CONSTRAINTS ALL IMMEDIATE")
        .await
        .map_err(|e| {
            let line = undo.last().map_or(0, |s| s.line);
            (line, crate::error::server_message(&e))
        })
}

/// What a migration's SQL set for the session (`SET search_path`, `set_config(...)`, `SET ROLE`,
/// `SET DateStyle`, temporary tables) is undone before the next step: each file and each
/// snapshot starts from the connection's own settings, as each would in a session of its own
/// (a pg_dump-made file sets `search_path` to '' and would otherwise break every later
/// unqualified name, and change how the snapshot prints view definitions). On PostgreSQL only:
/// CockroachDB keeps the settings `keep_transactions_whole` made.
async fn fresh_session(client: &Client, server: &ServerInfo) -> Result<()> {
    if server.flavour != Flavour::PostgreSQL {
        return Ok(());
    }
    sql(
        client,
        "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; DISCARD TEMP",
    )
    .await
}

fn compare(before: &Snapshot, after: &Snapshot) -> Verdict {
    let differences = before.diff(after);
    if differences.is_empty() {
        Verdict::Ok
    } else {
        Verdict::NotRestored { differences }
    }
}

/// Runs `statements`, in one transaction when `transactional` (rolled back on failure).
async fn apply(
    client: &Client,
    statements: &[Statement],
    transactional: bool,
) -> std::result::Result<(), (usize, String)> {
    let fail = |e: Error| (0, e.to_string());
    if !transactional {
        return execute(client, statements).await;
    }
    sql(client, "BEGIN").await.map_err(fail)?;
    match execute(client, statements).await {
        Ok(()) => sql(client, "COMMIT").await.map_err(fail),
        Err(e) => {
            sql(client, "ROLLBACK").await.map_err(fail)?;
            Err(e)
        }
    }
}

/// Runs each statement; the first failure as (line, server message).
async fn execute(
    client: &Client,
    statements: &[Statement],
) -> std::result::Result<(), (usize, String)> {
    for s in statements {
        client
            .batch_execute(&s.text)
            .await
            .map_err(|e| (s.line, crate::error::server_message(&e)))?;
    }
    Ok(())
}

async fn sql(client: &Client, text: &str) -> Result<()> {
    client
        .batch_execute(text)
        .await
        .map_err(|e| Error::db(format!("test: {text}"), e))
}

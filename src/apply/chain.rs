//! Chains: consecutive transactional steps sent as one pipelined flight of chained
//! transactions, so a run of migrations costs about one round trip instead of one each.
//!
//! Each step keeps its own transaction, fence check and ledger row. tokio-postgres ends every
//! request with its own Sync, so after a failed transaction the server still runs the next
//! `BEGIN`: every step after the first therefore opens with a guard, in the same simple query
//! as its `BEGIN` (no message added), that raises unless the step before it committed, read
//! from the ledger (up: its row present, `applied` and written under our fence; down: its row
//! gone). A raised guard aborts that transaction, its `COMMIT` rolls back, and the guard after
//! it fails in turn: the chain stops at the first failure, as one step per flight did.
//!
//! What a guard cannot see is a `COMMIT` whose answer is an error although its writes
//! committed. PostgreSQL answers `COMMIT` with success once committed and with an error only
//! when it rolled back, so there the ledger says it all. CockroachDB can answer XXA00 (a
//! schema change failed after its transaction, ledger row included, committed), 57014 (the
//! wait for the schema-change jobs cut short, cockroachdb/cockroach#128474) and 40003 at any
//! `COMMIT` (an ambiguous result: `ClientVisibleAmbiguousError` becomes
//! `StatementCompletionUnknown` in `pkg/sql/pgwire/pgerror/pgcode.go`); each marks the step
//! dirty and stops the run. So on CockroachDB every step ends its chain: the next flight goes
//! out only once the `COMMIT` before it answered, exactly as before. There the wait for a
//! schema change's jobs inside `COMMIT` dwarfs the round trip anyway.
//!
//! A stop (SIGTERM) lets the step in flight finish and starts nothing new, as between flights:
//! the guard also refuses while another session holds our stop lock, an advisory lock keyed by
//! the ledger table (its OID: one per ledger, so the runs of other schemas of the same database
//! never meet it) and our fence token ([`STOP`]), which the lease's connection takes when a stop
//! is asked for. The guard tries that lock and lets it go at once in the same expression, so
//! neither side ever waits on the other for longer than that.
//!
//! A chain is bounded ([`MAX_STEPS`], [`MAX_BYTES`]), so its flight's requests and replies
//! stay small in memory.

use crate::plan::{Direction, Step};

use super::failure::statements;

/// The most steps one chain holds. Its requests are all built and queued at once, so this
/// bounds the memory a run of many migrations takes: with 64, the peak RSS of an apply of 500
/// trivial migrations rose from 5.1 to 6.0 MiB, with 32 to 5.4 MiB, and 100 migrations at 20 ms
/// RTT took 4 flights instead of 2. At 50 they take 2.
pub(super) const MAX_STEPS: usize = 50;

/// The most SQL text (bytes) one chain holds; a single larger step is a chain of its own.
pub(super) const MAX_BYTES: usize = 128 * 1024;

/// How a guard's failure reads (the cast's input, so the server's message starts with it).
const MARKER: &str = "crdb-migrate chain guard";

/// Taken on the lease's connection when a stop is asked for mid-chain: the guards after it
/// refuse. Keyed by the ledger table's OID (`$1`: its name, resolved as the guard's `FROM`
/// resolves it) and [`stop_key`] (`$2`). Session-level, so it holds until [`UNSTOP`] or the
/// session ends.
pub(super) const STOP: &str =
    "SELECT pg_advisory_lock(($1::TEXT::regclass::oid::INT8 - 2147483648)::INT4, $2::INT4)";

/// Lets [`STOP`]'s lock go once the chain is over.
pub(super) const UNSTOP: &str =
    "SELECT pg_advisory_unlock(($1::TEXT::regclass::oid::INT8 - 2147483648)::INT4, $2::INT4)";

/// The stop lock's second key: the fence token's low 32 bits (one holder at a time per ledger,
/// so the token only tells our acquisition from an earlier one's).
pub(super) fn stop_key(fence: i64) -> i32 {
    fence as i32
}

/// The stop lock's keys as literals, for the guard's simple query (as [`STOP`] computes them).
fn keys(ledger: &str, fence: i64) -> String {
    format!(
        "('{ledger}'::regclass::oid::INT8 - 2147483648)::INT4, ({})::INT4",
        stop_key(fence)
    )
}

/// The end (exclusive) of the chain that starts at `from` (a transactional step): the
/// consecutive transactional steps after it, up to the bounds; on CockroachDB (`cockroach`)
/// the step alone.
pub(super) fn end(steps: &[Step<'_>], from: usize, cockroach: bool) -> usize {
    if cockroach {
        return from + 1;
    }
    let mut bytes = 0usize;
    let mut to = from;
    for step in &steps[from..] {
        if step.migration.no_transaction || to - from == MAX_STEPS {
            break;
        }
        bytes += statements(step).iter().map(|s| s.text.len()).sum::<usize>();
        if to > from && bytes > MAX_BYTES {
            break;
        }
        to += 1;
    }
    to.max(from + 1)
}

/// `begin` and the guard that refuses to go on unless `previous` committed and no stop was
/// asked for, as one simple query: `ledger` is the quoted ledger table, `fence` our fence
/// token. Raises SQLSTATE 22P02 (a failed cast, as the fence check does) naming the version or
/// the stop; `count(*)` in the cast's input keeps any planner from folding it into an error at
/// plan time. `CASE` evaluates its conditions in order, so the stop lock is tried, then let go.
pub(super) fn guarded_begin(begin: &str, ledger: &str, previous: &Step<'_>, fence: i64) -> String {
    let v = previous.migration.version;
    let (want, filter) = match previous.direction {
        Direction::Up => (
            1,
            format!("version = {v} AND status = 'applied' AND fence = {fence}"),
        ),
        Direction::Down => (0, format!("version = {v}")),
    };
    let key = keys(ledger, fence);
    let raise = |why: &str| format!("('{MARKER}: {why} (' || count(*)::TEXT || ' rows)')::INT8");
    format!(
        "{begin}; SELECT CASE WHEN NOT pg_try_advisory_lock({key}) THEN {stop} \
         WHEN NOT pg_advisory_unlock({key}) THEN {stop} \
         WHEN count(*) = {want} THEN 1::INT8 ELSE {not_committed} END \
         FROM {ledger} WHERE {filter}",
        stop = raise("stopping"),
        not_committed = raise(&format!("migration {v} did not commit")),
    )
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::source::Migration;

    fn step(v: i64, sql: &str, no_transaction: bool, direction: Direction) -> Step<'static> {
        let mut m = Migration::fixture(v);
        let statement = crate::split::Statement {
            text: sql.into(),
            line: 1,
            repeat_until_zero: false,
        };
        m.no_transaction = no_transaction;
        match direction {
            Direction::Up => m.up_statements = vec![statement],
            Direction::Down => m.down_statements = Some(vec![statement]),
        }
        Step {
            migration: Cow::Owned(m),
            direction,
            resume_from: 0,
        }
    }

    fn up(v: i64) -> Step<'static> {
        step(v, "CREATE TABLE t (id INT);", false, Direction::Up)
    }

    #[test]
    fn a_chain_runs_to_the_next_no_transaction_step() {
        let mut steps: Vec<_> = (1..=5).map(up).collect();
        steps[3] = step(
            4,
            "CREATE INDEX CONCURRENTLY i ON t (id);",
            true,
            Direction::Up,
        );
        assert_eq!(end(&steps, 0, false), 3);
        // The no-transaction step is never chained; the one after it starts a chain.
        assert_eq!(end(&steps, 4, false), 5);
    }

    #[test]
    fn on_cockroachdb_every_step_ends_its_chain() {
        let steps: Vec<_> = (1..=5).map(up).collect();
        assert_eq!(end(&steps, 0, true), 1);
        assert_eq!(end(&steps, 4, true), 5);
    }

    #[test]
    fn a_chain_is_bounded_by_steps_and_by_bytes() {
        let steps: Vec<_> = (1..=200).map(up).collect();
        assert_eq!(end(&steps, 0, false), MAX_STEPS);
        assert_eq!(end(&steps, 190, false), 200);
        let big = "x".repeat(MAX_BYTES / 2 + 1);
        let steps: Vec<_> = (1..=4)
            .map(|v| step(v, &big, false, Direction::Up))
            .collect();
        assert_eq!(end(&steps, 0, false), 1, "two would pass the byte bound");
        let huge = "x".repeat(MAX_BYTES * 2);
        let steps = [step(1, &huge, false, Direction::Up), up(2)];
        assert_eq!(
            end(&steps, 0, false),
            1,
            "a step larger than the bound goes alone"
        );
    }

    #[test]
    fn the_guard_reads_the_previous_steps_ledger_effect() {
        let g = guarded_begin("BEGIN", "\"_migrations\"", &up(7), 42);
        assert!(g.starts_with("BEGIN; SELECT CASE WHEN "), "{g}");
        assert!(g.contains(" WHEN count(*) = 1 THEN 1::INT8 ELSE "), "{g}");
        assert!(
            g.ends_with(
                "FROM \"_migrations\" WHERE version = 7 AND status = 'applied' AND fence = 42"
            ),
            "{g}"
        );
        assert!(g.contains("migration 7 did not commit"), "{g}");
        assert!(g.contains("|| count(*)::TEXT ||"), "not foldable: {g}");
        let key = "('\"_migrations\"'::regclass::oid::INT8 - 2147483648)::INT4, (42)::INT4";
        assert!(
            g.contains(&format!("WHEN NOT pg_try_advisory_lock({key}) THEN"))
                && g.contains(&format!("WHEN NOT pg_advisory_unlock({key}) THEN")),
            "the stop lock is tried and let go: {g}"
        );
        assert!(
            g.find("pg_try_advisory_lock") < g.find("WHEN count(*)"),
            "{g}"
        );
        let down = step(7, "DROP TABLE t;", false, Direction::Down);
        let g = guarded_begin("BEGIN", "\"_migrations\"", &down, 42);
        assert!(g.contains("WHEN count(*) = 0 "), "{g}");
        assert!(g.ends_with("WHERE version = 7"), "{g}");
    }

    #[test]
    fn the_stop_lock_is_keyed_by_the_ledger_and_the_fence() {
        assert_eq!(stop_key(1), 1);
        assert_eq!(stop_key((7 << 32) + 3), 3);
        let keys = "($1::TEXT::regclass::oid::INT8 - 2147483648)::INT4, $2::INT4";
        assert_eq!(STOP, format!("SELECT pg_advisory_lock({keys})"));
        assert_eq!(UNSTOP, format!("SELECT pg_advisory_unlock({keys})"));
    }
}

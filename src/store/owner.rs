//! Which acquisition took the lease: a token random per process, and a number that grows with
//! every acquisition statement the process sends. Stored with the lease row, they let the
//! acquisition refuse a statement sent *before* one of ours that already took the row.
//!
//! Why: a run whose lease connection drops during its first flight starts over on a new
//! connection, but the old backend may still hold that flight's acquiring UPDATE in its input
//! buffer and run it later, under the same holder name. Without this, "same holder" let that
//! stale UPDATE take the row back from the new attempt and bump the fence, fencing the new
//! attempt off (exit 12). The holder name cannot tell the two apart, and ending the old backend
//! first would need its pid or CockroachDB session id, not known when the connection is cut
//! during startup, nor reachable through a real network partition. The token needs neither,
//! costs no message (two more parameters and columns of the same statement) and works the same
//! on PostgreSQL and CockroachDB. A restarted process (a pod restarted with the same name) has
//! a new token, so it still takes over its predecessor's lease at once.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// This process's token: 64 random bits (std's per-process random hash keys over the pid and
/// the start time) and the pid, e.g. `3f2a9c0e1b7d5a64-4121`.
pub fn process() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let pid = std::process::id();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(pid);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        h.write_u128(now.map(|d| d.as_nanos()).unwrap_or(0));
        format!("{:016x}-{pid}", h.finish())
    })
}

/// The number of the next acquisition statement this process sends: 1, 2, ... in sending
/// order, over every run of the process. A statement sent later always has a larger number, so
/// a run still polling draws one larger than any acquisition that finished before.
pub fn next_seq() -> i64 {
    static SEQ: AtomicI64 = AtomicI64::new(0);
    SEQ.fetch_add(1, Ordering::SeqCst) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_fixed_per_process_and_the_numbers_grow() {
        assert_eq!(process(), process());
        assert!(process().ends_with(&format!("-{}", std::process::id())));
        let (a, b) = (next_seq(), next_seq());
        assert!(a >= 1 && b > a, "{a} {b}");
    }
}

//! Decides, once per build, which integration tests (`tests/*.rs`) apply on this machine, and
//! tells them through `cfg`s. A test that does not apply carries
//! `#[cfg_attr(not(<cfg>), ignore = "<why>")]`, so `cargo test` lists it as ignored, with the
//! reason, and counts it as ignored: it never passes without having run. Nothing under `src/`
//! reads these `cfg`s.
//!
//! - `crdb_test_server = "postgres" | "cockroach"`: the server the test harness starts or
//!   reaches (`tests/support/server.rs` reads this decision, it does not make its own).
//!   `CRDB_MIGRATE_TEST_FLAVOUR=postgres|cockroach` forces one; otherwise CockroachDB when
//!   `CRDB_MIGRATE_TEST_COCKROACH_PORT` names an already running one, or when a `cockroach`
//!   executable is on `PATH`; otherwise PostgreSQL.
//! - `crdb_test_bare_root`: the binary can be run in a bare root of its own (`tests/deploy.rs`):
//!   this is root, `unshare`, `chroot`, `mount` and `ldd` are on `PATH`, and
//!   `unshare --mount` is permitted.
//!
//! Cargo runs this again when one of those variables or `PATH` changes. What it cannot see
//! (tests run by another user than the build, a `cockroach` copied into a directory already
//! on `PATH`) needs `touch build.rs`; `cargo test -- --include-ignored` runs every test anyway.

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Forces the server: `postgres` or `cockroach`.
const FLAVOUR: &str = "CRDB_MIGRATE_TEST_FLAVOUR";
/// The port of an already running insecure CockroachDB on 127.0.0.1.
const COCKROACH_PORT: &str = "CRDB_MIGRATE_TEST_COCKROACH_PORT";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(crdb_test_server, values(\"postgres\", \"cockroach\"))");
    println!("cargo::rustc-check-cfg=cfg(crdb_test_bare_root)");
    for var in [FLAVOUR, COCKROACH_PORT, "PATH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-cfg=crdb_test_server=\"{}\"", server());
    if bare_root_possible() {
        println!("cargo::rustc-cfg=crdb_test_bare_root");
    }
}

/// The value of `var`, `None` when unset or empty.
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

/// `"postgres"` or `"cockroach"`: the server the tests of this build run against.
fn server() -> &'static str {
    match var(FLAVOUR).as_deref() {
        Some("postgres") => "postgres",
        Some("cockroach") => "cockroach",
        Some(other) => panic!("{FLAVOUR}={other:?}: expected `postgres` or `cockroach`"),
        None if var(COCKROACH_PORT).is_some() || on_path("cockroach").is_some() => "cockroach",
        None => "postgres",
    }
}

/// Whether a run in a bare root of its own (a private mount namespace and `chroot`) is possible.
fn bare_root_possible() -> bool {
    effective_uid() == Some(0)
        && ["unshare", "chroot", "mount", "ldd"]
            .iter()
            .all(|tool| on_path(tool).is_some())
        && Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// This process's effective user id, read from `/proc/self/status` (`Uid: real effective ...`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// The first executable file named `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Whether `p` is a file with an execute bit.
fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

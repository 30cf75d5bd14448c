//! The binary under test: [`bin()`] (a clean environment), [`run`] with a deadline, and the
//! [`Output`] it leaves, with its JSON log events.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::POLL;

/// Default limit for one run of the binary under test ([`run`]); a hang fails, it does not block.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Path of the `crdb-migrate` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_crdb-migrate");

/// A `Command` for the binary with a clean environment: only `PATH`, `LOG_FORMAT=json` and
/// `MIGRATE_TERMINATION_LOG=/dev/null`. Add what the test needs with `.env(..)`.
pub fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("MIGRATE_TERMINATION_LOG", "/dev/null")
        .stdin(Stdio::null());
    cmd
}

/// [`bin()`] pointed at a database and a migrations directory (`DATABASE_URL`,
/// `MIGRATIONS_DIR`); add the rest (`MIGRATE_WAIT_TIMEOUT`, `MIGRATE_HOLDER`, args) as needed.
pub fn bin_at(url: &str, dir: &std::path::Path) -> Command {
    let mut cmd = bin();
    cmd.env("DATABASE_URL", url).env("MIGRATIONS_DIR", dir);
    cmd
}

/// What a finished process left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `128 + signal` when killed by a signal.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// Lines of stdout that parse as JSON (log events), in order; other lines are skipped.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.is_object())
            .collect()
    }

    /// The events whose `event` field is `name`.
    pub fn events_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| event_name(e) == Some(name))
            .collect()
    }

    /// Whether an event named `name` was logged.
    pub fn has_event(&self, name: &str) -> bool {
        self.events().iter().any(|e| event_name(e) == Some(name))
    }

    /// Panics, showing both streams, unless the exit code is `code`. Returns self for chaining.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// An event's name: the `event` field, at top level or under `fields` (tracing's JSON layout).
fn event_name(e: &serde_json::Value) -> Option<&str> {
    field(e, "event").as_str()
}

/// A field of a log event: at top level (the flattened JSON log) or under `fields` (tracing's
/// nesting); `Null` when it has neither.
pub fn field<'a>(e: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    e.get(name)
        .or_else(|| e.get("fields").and_then(|f| f.get(name)))
        .unwrap_or(&serde_json::Value::Null)
}

/// A migrations directory holding `files` (name, content); names may contain `/` (an
/// environment sub-directory), whose parents are created.
pub fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, body).expect("write");
    }
    dir
}

/// Runs `cmd` to completion (killing it and panicking after 120 s) and captures its output.
pub fn run(cmd: &mut Command) -> Output {
    run_with_deadline(cmd, RUN_DEADLINE)
}

/// Like [`run`] with an explicit deadline after which the process is killed and the test panics.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_t = drain(Box::new(out));
    let err_t = drain(Box::new(err));
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if t0.elapsed() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap_or_default();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {deadline:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
        std::thread::sleep(POLL);
    };
    Output {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// The binary running in the background, its stdout and stderr going to files, so a test can
/// watch its progress, signal it and wait for it with a deadline. Dropping it (a panicking
/// test) continues and kills it, so no stopped or running migrator is left behind.
pub struct Background {
    child: std::process::Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    /// Starts `c` in the background.
    pub fn spawn(c: &mut Command) -> Background {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("stdout");
        let err = dir.path().join("stderr");
        let child = c
            .stdout(Stdio::from(
                std::fs::File::create(&out).expect("stdout file"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(&err).expect("stderr file"),
            ))
            .spawn()
            .expect("spawn crdb-migrate");
        Background {
            child,
            out,
            err,
            _dir: dir,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What it has written so far (exit code -1 while running).
    pub fn output(&self, code: i32) -> Output {
        Output {
            code,
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }

    /// It has logged `event` so far.
    pub fn has_logged(&self, event: &str) -> bool {
        self.output(-1).has_event(event)
    }

    /// Sends `kill -SIG`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the exit (killing it and panicking after `deadline`).
    pub fn wait(mut self, deadline: Duration) -> Output {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                return self.output(code);
            }
            if t0.elapsed() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let o = self.output(-1);
                panic!(
                    "still running after {deadline:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    o.stdout, o.stderr
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

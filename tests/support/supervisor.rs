//! A server process under the `sh` supervisor described in the harness docs (`mod.rs`): its
//! stdin is a pipe held by the test process, so the server stops (and its temporary directory
//! goes) when the test process exits however it exits. Also the readiness wait every start uses.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use super::database::try_psql;
use super::{POLL, READY_DEADLINE};

/// A server process under the `sh` supervisor described in the module docs.
pub(super) struct Supervised {
    child: Child,
    /// Write end of the supervisor's stdin: closing it (drop, or process exit) stops the server.
    stdin: Option<ChildStdin>,
    /// The temporary directory (removed by the supervisor once the server has stopped).
    pub(super) dir: PathBuf,
    /// The server's stdout and stderr, opened for reading before the start: still readable
    /// after the supervisor has removed the directory (a server that died at start).
    log: fs::File,
}

/// The supervisor script. Positional parameters: `$1` the temp dir, `$2` the log file,
/// `$3` the signal that stops the server, then the server command line.
///
/// The main shell waits on the server, so the supervisor exits as soon as the server does
/// (a failed start is noticed at once). A background reader waits for EOF on our pipe and then
/// signals the server. The pipe is duplicated to fd 3 first because POSIX gives background
/// jobs `/dev/null` as stdin; the server itself gets neither.
///
/// Restarts: when the server exits while the file `.restart` exists in the temp dir (and no
/// stop was asked), the file is removed and the server started again with the same command
/// line, keeping the directory ([`super::CustomServer::restart_immediate`]). The server's pid
/// is kept in `.server.pid` for the reader; `.stop` (written by the reader before it reads
/// that pid) tells a server started meanwhile to stop at once.
const SUPERVISOR: &str = r#"dir=$1; log=$2; sig=$3; shift 3
exec 3<&0
{ read _ <&3; : >"$dir/.stop"; kill -"$sig" "$(cat "$dir/.server.pid" 2>/dev/null)" 2>/dev/null; } &
reader=$!
exec 3<&-
while :; do
  "$@" >>"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/.server.pid"
  [ -e "$dir/.stop" ] && kill -"$sig" "$pid" 2>/dev/null
  wait "$pid"
  [ -e "$dir/.restart" ] && [ ! -e "$dir/.stop" ] || break
  rm -f "$dir/.restart"
done
kill "$reader" 2>/dev/null
rm -rf "$dir"
"#;

impl Supervised {
    pub(super) fn spawn(
        dir: &Path,
        stop_signal: &str,
        argv: &[String],
        envs: &[(&str, &str)],
    ) -> Supervised {
        let log_path = dir.join("server.log");
        let log = fs::File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .expect("create server log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("crdbm-supervisor")
            .arg(dir)
            .arg(&log_path)
            .arg(stop_signal)
            .args(argv)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a terminal Ctrl-C hits the test process only; the server is
            // then stopped through the pipe, which also cleans the temp dir up.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .expect("spawn sh supervisor for the test server");
        let stdin = child.stdin.take();
        Supervised {
            child,
            stdin,
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// Whether the supervisor (hence the server) has already exited.
    pub(super) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub(super) fn log_tail(&self) -> String {
        let mut text = String::new();
        let mut f = &self.log;
        let _ = f.seek(SeekFrom::Start(0));
        if let Err(e) = f.read_to_string(&mut text) {
            return format!("<cannot read server log: {e}>");
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stops the server and waits until it is gone and its directory removed.
    pub(super) fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Whether a failed start's log says the port was taken (PostgreSQL: "could not bind ...
/// Address already in use"; CockroachDB: "bind: address already in use").
pub(super) fn is_port_clash(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// Polls `select 1` through `url` until it works, the server exits, or [`READY_DEADLINE`].
/// On failure returns the server log's tail (plus the last psql error).
pub(super) fn wait_ready(sup: &mut Supervised, url: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if sup.exited() {
            return Err(format!("server exited early:\n{}", sup.log_tail()));
        }
        let last_err = match try_psql(url, "select 1") {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready after {READY_DEADLINE:?}; last psql error: {last_err}\n{}",
                sup.log_tail()
            ));
        }
        std::thread::sleep(POLL);
    }
}

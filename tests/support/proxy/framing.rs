//! Framing of the PostgreSQL wire protocol, one direction at a time: the client's untyped
//! startup packets, the one-byte SSL/GSS answer, then type byte + 4-byte length messages.

use std::sync::atomic::Ordering;

use super::runtime::Conn;
use super::{Dir, Startup, lock};

/// SSLRequest's code in place of a protocol version.
const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest's code.
const GSSENC_REQUEST: u32 = 80_877_104;
/// Startup-phase packets longer than this are not PostgreSQL: stop parsing.
const MAX_STARTUP_LEN: usize = 10_000;

/// A framed piece of one direction's stream.
pub(super) struct Unit {
    /// The message's type byte (0 for an untyped startup-phase message); `None` for raw bytes
    /// after encryption was negotiated (or past something that is not PostgreSQL).
    pub(super) tag: Option<u8>,
    /// Whether this is the client's StartupMessage.
    pub(super) startup: bool,
    pub(super) bytes: Vec<u8>,
}

/// Splits one direction's bytes into whole messages.
pub(super) struct Framer {
    dir: Dir,
    buf: Vec<u8>,
    /// Client only: still before the StartupMessage (untyped packets).
    startup_phase: bool,
}

impl Framer {
    pub(super) fn new(dir: Dir) -> Framer {
        Framer {
            dir,
            buf: Vec::new(),
            startup_phase: dir == Dir::ClientToServer,
        }
    }

    /// Appends `data` and returns every unit now complete.
    pub(super) fn push(&mut self, data: &[u8], conn: &Conn) -> Vec<Unit> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(unit) = self.next(conn) {
            out.push(unit);
        }
        out
    }

    fn take(&mut self, n: usize, tag: Option<u8>, startup: bool) -> Option<Unit> {
        let bytes = self.buf.drain(..n).collect();
        Some(Unit {
            tag,
            startup,
            bytes,
        })
    }

    fn next(&mut self, conn: &Conn) -> Option<Unit> {
        if self.buf.is_empty() {
            return None;
        }
        if conn.raw.load(Ordering::SeqCst) {
            return self.take(self.buf.len(), None, false);
        }
        if self.dir == Dir::ServerToClient && conn.expect_answer.swap(false, Ordering::SeqCst) {
            let answer = self.buf[0];
            if answer == b'S' || answer == b'G' {
                conn.raw.store(true, Ordering::SeqCst);
            }
            return self.take(1, Some(answer), false);
        }
        if self.startup_phase {
            return self.next_startup(conn);
        }
        if self.buf.len() < 5 {
            return None;
        }
        let len = be32(&self.buf[1..5]) as usize;
        if len < 4 {
            // Not PostgreSQL framing: forward the rest as bytes.
            conn.raw.store(true, Ordering::SeqCst);
            return self.take(self.buf.len(), None, false);
        }
        if self.buf.len() < 1 + len {
            return None;
        }
        let tag = self.buf[0];
        self.take(1 + len, Some(tag), false)
    }

    /// The client's untyped packets: `len (4) code (4) [payload]`.
    fn next_startup(&mut self, conn: &Conn) -> Option<Unit> {
        if self.buf[0] != 0 {
            // A TLS record (direct SSL) or garbage, not a startup packet.
            conn.raw.store(true, Ordering::SeqCst);
            return self.take(self.buf.len(), None, false);
        }
        if self.buf.len() < 8 {
            return None;
        }
        let len = be32(&self.buf[0..4]) as usize;
        if !(8..=MAX_STARTUP_LEN).contains(&len) {
            conn.raw.store(true, Ordering::SeqCst);
            return self.take(self.buf.len(), None, false);
        }
        if self.buf.len() < len {
            return None;
        }
        let code = be32(&self.buf[4..8]);
        let mut startup = false;
        match code {
            SSL_REQUEST | GSSENC_REQUEST => conn.expect_answer.store(true, Ordering::SeqCst),
            v if v >> 16 == 3 => {
                self.startup_phase = false;
                startup = true;
                *lock(&conn.startup) = Some(parse_startup(&self.buf[8..len]));
            }
            _ => {} // CancelRequest: the connection ends after it.
        }
        self.take(len, Some(0), startup)
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The StartupMessage's parameters: NUL-terminated name, value pairs ending with a NUL.
fn parse_startup(mut params: &[u8]) -> Startup {
    let mut s = Startup::default();
    let next = |p: &mut &[u8]| -> Option<String> {
        let end = p.iter().position(|&b| b == 0)?;
        let v = String::from_utf8_lossy(&p[..end]).into_owned();
        *p = &p[end + 1..];
        Some(v)
    };
    while let Some(name) = next(&mut params) {
        if name.is_empty() {
            break;
        }
        let Some(value) = next(&mut params) else {
            break;
        };
        match name.as_str() {
            "user" => s.user = Some(value),
            "database" => s.database = Some(value),
            "application_name" => s.application_name = Some(value),
            _ => {}
        }
    }
    s
}

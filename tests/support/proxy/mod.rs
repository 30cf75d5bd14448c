//! A fault-injecting TCP proxy for the PostgreSQL wire protocol, for tests of real networks
//! (reconnects, stalls, round-trip counts): latency, connections cut or stalled at a chosen byte or
//! protocol message, and statistics of messages and round trips.
//!
//! [`Proxy::start`] listens on `127.0.0.1:<free port>` and forwards every accepted connection
//! to the real server. It runs on a thread of its own with its own single-threaded tokio
//! runtime, so synchronous tests (psql, the binary) and `#[tokio::test]`s use it alike. Dropping
//! the [`Proxy`] stops it and closes every connection it holds. [`Proxy::url`] rewrites the
//! `host:port` of a `postgresql://` URL to point at the proxy.
//!
//! Framing: the client's first messages have no type byte (length-prefixed StartupMessage,
//! SSLRequest, GSSENCRequest, CancelRequest); an SSLRequest or GSSENCRequest gets a one-byte
//! answer (`S`/`G` or `N`); after `S` or `G` the rest is encrypted, so the proxy stops parsing
//! and only counts bytes. After the StartupMessage every message, both ways, is a type byte plus
//! a 4-byte big-endian length that counts itself. Messages are numbered per connection and
//! direction from 1; the client's untyped messages and the one-byte answer count as messages.
//! Whole messages are forwarded (a message is held until it is complete).
//!
//! Faults ([`Fault`]) are armed and disarmed at runtime ([`Proxy::arm`], [`Proxy::arm_once`],
//! [`Proxy::disarm`]); each targets the connections a [`ConnMatch`] selects (the n-th accepted,
//! all, or those whose StartupMessage names a database, user or application_name) and is
//! checked at every message, so it also reaches connections open before it was armed. Other
//! connections pass untouched. A one-shot fault disarms itself once it has fired.
//! - `CutAt { dir, message: k }`: forward messages 1 to k-1 in `dir`, then close both sockets
//!   instead of forwarding message `k`.
//! - `CutAfterBytes { dir, bytes: n }`: forward exactly `n` bytes in `dir`, then close both
//!   (a connection that had already forwarded more than `n` when it was armed is left alone).
//! - `Stall`: accept and never answer: no upstream connection, the socket held open, nothing
//!   forwarded (a name-matched stall holds back the StartupMessage instead).
//! - `StallAt { dir, message: k }`: forward messages 1 to k-1 in `dir`, then nothing more,
//!   either way.
//!
//! A cut or stall still delivers, after its latency, what was forwarded before it. A stalled
//! connection is closed once either peer closes it.
//!
//! Latency ([`Proxy::set_latency`]) delays every byte by a fixed time per direction, keeping
//! their order. Statistics ([`Proxy::stats`], [`Proxy::reset_stats`]) count, per connection and
//! in total, messages and bytes each way, the type byte of every message in order
//! ([`ConnStats::tags`]), and *flights*: how many times the client started sending after the
//! server's bytes had reached it, i.e. round trips (a pipelined batch is one flight).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use runtime::{Shared, accept_loop};

mod framing;
mod runtime;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Dir {
    pub(super) fn idx(self) -> usize {
        match self {
            Dir::ClientToServer => 0,
            Dir::ServerToClient => 1,
        }
    }
}

/// Which connections a [`Fault`] targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnMatch {
    /// Every connection.
    All,
    /// The n-th connection accepted since the proxy started, from 1 (see [`Proxy::accepted`]).
    Nth(u64),
    /// Connections whose StartupMessage names this database (no `database`: the user's name).
    Database(String),
    /// Connections whose StartupMessage names this user.
    User(String),
    /// Connections whose StartupMessage sets this `application_name`.
    ApplicationName(String),
}

impl ConnMatch {
    /// Whether this matcher needs the StartupMessage to decide.
    pub(super) fn by_startup(&self) -> bool {
        !matches!(self, ConnMatch::All | ConnMatch::Nth(_))
    }

    pub(super) fn matches(&self, n: u64, startup: Option<&Startup>) -> bool {
        let is = |v: Option<&String>, want: &String| v == Some(want);
        match (self, startup) {
            (ConnMatch::All, _) => true,
            (ConnMatch::Nth(k), _) => n == *k,
            (_, None) => false,
            (ConnMatch::Database(d), Some(s)) => is(s.database.as_ref().or(s.user.as_ref()), d),
            (ConnMatch::User(u), Some(s)) => is(s.user.as_ref(), u),
            (ConnMatch::ApplicationName(a), Some(s)) => is(s.application_name.as_ref(), a),
        }
    }
}

/// A fault to inject; see the module docs for the exact semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward `bytes` bytes in `dir`, then close both sides.
    CutAfterBytes {
        /// The direction whose bytes are counted.
        dir: Dir,
        /// How many bytes get through.
        bytes: u64,
        /// The connections targeted.
        conn: ConnMatch,
    },
    /// Close both sides instead of forwarding the `message`-th message (from 1) in `dir`.
    CutAt {
        /// The direction whose messages are counted.
        dir: Dir,
        /// The index of the message that never arrives.
        message: u64,
        /// The connections targeted.
        conn: ConnMatch,
    },
    /// Accept and never answer: hold the socket open and forward nothing.
    Stall {
        /// The connections targeted.
        conn: ConnMatch,
    },
    /// Forward nothing more, either way, from the `message`-th message (from 1) in `dir` on.
    StallAt {
        /// The direction whose messages are counted.
        dir: Dir,
        /// The index of the first message held back.
        message: u64,
        /// The connections targeted.
        conn: ConnMatch,
    },
}

impl Fault {
    pub(super) fn conn(&self) -> &ConnMatch {
        match self {
            Fault::CutAfterBytes { conn, .. }
            | Fault::CutAt { conn, .. }
            | Fault::Stall { conn }
            | Fault::StallAt { conn, .. } => conn,
        }
    }
}

/// Names an armed fault, for [`Proxy::disarm`] and [`Proxy::fired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(pub(super) u64);

/// What a StartupMessage said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Startup {
    /// The `user` parameter.
    pub user: Option<String>,
    /// The `database` parameter.
    pub database: Option<String>,
    /// The `application_name` parameter.
    pub application_name: Option<String>,
}

/// Statistics of one connection since it was accepted or since [`Proxy::reset_stats`].
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    /// Its number: the n-th connection accepted, from 1.
    pub n: u64,
    /// What its StartupMessage said, once seen.
    pub startup: Option<Startup>,
    /// Whether the proxy still holds it.
    pub open: bool,
    /// Whether it switched to TLS or GSS encryption (no more parsing, bytes only).
    pub encrypted: bool,
    /// Messages forwarded to the server.
    pub messages_to_server: u64,
    /// Messages forwarded to the client.
    pub messages_to_client: u64,
    /// Bytes forwarded to the server.
    pub bytes_to_server: u64,
    /// Bytes forwarded to the client.
    pub bytes_to_client: u64,
    /// Round trips: times the client started sending after server bytes had reached it.
    pub flights: u64,
    /// Every forwarded message in order: its direction and type byte (`0` for the client's
    /// untyped startup-phase messages; the SSL/GSS answer's byte for that answer).
    pub log: Vec<(Dir, u8)>,
}

impl ConnStats {
    /// Messages forwarded in `dir`.
    pub fn messages(&self, dir: Dir) -> u64 {
        match dir {
            Dir::ClientToServer => self.messages_to_server,
            Dir::ServerToClient => self.messages_to_client,
        }
    }

    /// Bytes forwarded in `dir`.
    pub fn bytes(&self, dir: Dir) -> u64 {
        match dir {
            Dir::ClientToServer => self.bytes_to_server,
            Dir::ServerToClient => self.bytes_to_client,
        }
    }

    /// The type bytes of the messages forwarded in `dir`, in order, as a string (`'_'` for an
    /// untyped startup-phase message), e.g. `"_QX"` for psql running one simple query.
    pub fn tags(&self, dir: Dir) -> String {
        self.log
            .iter()
            .filter(|(d, _)| *d == dir)
            .map(|(_, t)| if *t == 0 { '_' } else { *t as char })
            .collect()
    }
}

/// Statistics of every connection, open or closed since the last reset.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// One entry per connection, in accept order.
    pub conns: Vec<ConnStats>,
}

impl Stats {
    /// Messages forwarded in `dir`, all connections together.
    pub fn messages(&self, dir: Dir) -> u64 {
        self.conns.iter().map(|c| c.messages(dir)).sum()
    }

    /// Bytes forwarded in `dir`, all connections together.
    pub fn bytes(&self, dir: Dir) -> u64 {
        self.conns.iter().map(|c| c.bytes(dir)).sum()
    }

    /// Flights (round trips), all connections together.
    pub fn flights(&self) -> u64 {
        self.conns.iter().map(|c| c.flights).sum()
    }

    /// The connection numbered `n`, if it is in these statistics.
    pub fn conn(&self, n: u64) -> Option<&ConnStats> {
        self.conns.iter().find(|c| c.n == n)
    }
}

/// A running proxy; see the module docs. Stopped on drop.
pub struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy to 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("make the proxy's listener non-blocking");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared::new(upstream));
        let (stop, stopped) = oneshot::channel();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build the proxy's runtime");
                rt.block_on(accept_loop(listener, s, stopped));
                // Dropping the runtime cancels every connection task: their sockets close.
            })
            .expect("spawn the proxy thread");
        Proxy {
            shared,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Starts a proxy in front of the shared test server ([`super::server()`]).
    pub fn to_server() -> Proxy {
        Proxy::start(SocketAddr::from(([127, 0, 0, 1], super::server().port())))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `original` (`postgresql://[userinfo@]host:port[/db][?query]`) with its host and port
    /// replaced by the proxy's; a host list is replaced as a whole. Panics on a URL without
    /// `://`; a unix socket in `?host=` is not rewritten.
    pub fn url(&self, original: &str) -> String {
        let (scheme, rest) = original
            .split_once("://")
            .unwrap_or_else(|| panic!("not a URL with a scheme: {original:?}"));
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host_at = authority.rfind('@').map_or(0, |i| i + 1);
        format!(
            "{scheme}://{}127.0.0.1:{}{}",
            &authority[..host_at],
            self.port(),
            &rest[end..]
        )
    }

    /// Delays every byte read from now on in `dir` by `latency` (order is kept).
    pub fn set_latency(&self, dir: Dir, latency: Duration) {
        lock(&self.shared.latency)[dir.idx()] = latency;
    }

    /// Arms `fault` until [`Proxy::disarm`]ed; it fires on every connection it matches.
    pub fn arm(&self, fault: Fault) -> FaultId {
        self.shared.arm(fault, false)
    }

    /// Arms `fault` for one firing: once it has fired, later connections pass.
    pub fn arm_once(&self, fault: Fault) -> FaultId {
        self.shared.arm(fault, true)
    }

    /// Disarms a fault (no-op when it is not armed, e.g. a one-shot that fired).
    pub fn disarm(&self, id: FaultId) {
        lock(&self.shared.faults).retain(|a| a.id != id);
    }

    /// Disarms every fault.
    pub fn disarm_all(&self) {
        lock(&self.shared.faults).clear();
    }

    /// How many times the fault has fired.
    pub fn fired(&self, id: FaultId) -> u64 {
        lock(&self.shared.fired).get(&id).copied().unwrap_or(0)
    }

    /// How many connections were accepted since start (the next one is `accepted() + 1`).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> Stats {
        Stats {
            conns: lock(&self.shared.stats).values().cloned().collect(),
        }
    }

    /// Zeroes the statistics: closed connections are forgotten, open ones start from zero
    /// (their message numbering for faults does not change).
    pub fn reset_stats(&self) {
        let mut stats = lock(&self.shared.stats);
        stats.retain(|_, c| c.open);
        for c in stats.values_mut() {
            *c = ConnStats {
                n: c.n,
                startup: c.startup.take(),
                open: true,
                encrypted: c.encrypted,
                ..ConnStats::default()
            };
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not hide the proxy's data).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! A fault-injecting TCP proxy for the PostgreSQL wire protocol, for tests of real networks
//! (issue 11): latency, connections cut or stalled at a chosen byte or protocol message, and
//! statistics of messages and round trips.
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
//! - `CutAt { dir, message: k }`: forward messages `1..k` in `dir`, then close both sockets
//!   instead of forwarding message `k`.
//! - `CutAfterBytes { dir, bytes: n }`: forward exactly `n` bytes in `dir`, then close both.
//! - `Stall`: accept and never answer: no upstream connection, the socket held open, nothing
//!   forwarded (a name-matched stall holds back the StartupMessage instead).
//! - `StallAt { dir, message: k }`: forward messages `1..k` in `dir`, then nothing more either way.
//!
//! A cut or stall still delivers, after its latency, what was forwarded before it. A stalled
//! connection is closed once either peer closes it.
//!
//! Latency ([`Proxy::set_latency`]) delays every byte by a fixed time per direction, keeping
//! their order. Statistics ([`Proxy::stats`], [`Proxy::reset_stats`]) count, per connection and
//! in total, messages and bytes each way, the type byte of every message in order
//! ([`ConnStats::tags`]), and *flights*: how many times the client started sending after the
//! server's bytes had reached it, i.e. round trips (a pipelined batch is one flight).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// SSLRequest's code in place of a protocol version.
const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest's code.
const GSSENC_REQUEST: u32 = 80_877_104;
/// Startup-phase packets longer than this are not PostgreSQL: stop parsing.
const MAX_STARTUP_LEN: usize = 10_000;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Dir {
    fn idx(self) -> usize {
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
    fn by_startup(&self) -> bool {
        !matches!(self, ConnMatch::All | ConnMatch::Nth(_))
    }

    fn matches(&self, n: u64, startup: Option<&Startup>) -> bool {
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
    fn conn(&self) -> &ConnMatch {
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
pub struct FaultId(u64);

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
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Inside the proxy's runtime
// ---------------------------------------------------------------------------------------------

struct Armed {
    id: FaultId,
    fault: Fault,
    once: bool,
}

/// State shared by the [`Proxy`] handle and the runtime.
struct Shared {
    upstream: SocketAddr,
    latency: Mutex<[Duration; 2]>,
    faults: Mutex<Vec<Armed>>,
    fired: Mutex<BTreeMap<FaultId, u64>>,
    next_fault: AtomicU64,
    accepted: AtomicU64,
    stats: Mutex<BTreeMap<u64, ConnStats>>,
}

/// What a fired fault does to the connection.
enum Action {
    /// Forward this many bytes of the unit, then close both sides.
    Cut(usize),
    /// Forward nothing more.
    Stall,
}

impl Shared {
    fn new(upstream: SocketAddr) -> Shared {
        Shared {
            upstream,
            latency: Mutex::new([Duration::ZERO; 2]),
            faults: Mutex::new(Vec::new()),
            fired: Mutex::new(BTreeMap::new()),
            next_fault: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    fn arm(&self, fault: Fault, once: bool) -> FaultId {
        let id = FaultId(self.next_fault.fetch_add(1, Ordering::SeqCst));
        lock(&self.faults).push(Armed { id, fault, once });
        id
    }

    /// Fires the first armed fault that targets `conn` and for which `decide` returns an
    /// action: counts it, disarms it when one-shot, and returns the action. Under one lock, so
    /// a one-shot fault fires exactly once however many connections race for it.
    fn fire(&self, conn: &Conn, decide: impl Fn(&Fault) -> Option<Action>) -> Option<Action> {
        let startup = lock(&conn.startup).clone();
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|a| {
            a.fault.conn().matches(conn.n, startup.as_ref()) && decide(&a.fault).is_some()
        })?;
        let action = decide(&faults[i].fault);
        *lock(&self.fired).entry(faults[i].id).or_insert(0) += 1;
        if faults[i].once {
            faults.remove(i);
        }
        action
    }

    fn with_stats(&self, n: u64, f: impl FnOnce(&mut ConnStats)) {
        let mut stats = lock(&self.stats);
        let c = stats.entry(n).or_insert_with(|| ConnStats {
            n,
            open: true,
            ..ConnStats::default()
        });
        f(c);
    }
}

/// One proxied connection's state, shared by its four pumps.
struct Conn {
    n: u64,
    startup: Mutex<Option<Startup>>,
    /// The client sent SSLRequest/GSSENCRequest: the server's next byte is the answer.
    expect_answer: AtomicBool,
    /// Encryption was negotiated: no more parsing.
    raw: AtomicBool,
    stalled: AtomicBool,
    /// Server bytes reached the client since the client's last flight began.
    server_spoke: AtomicBool,
    /// Forwarded messages and bytes per direction, for the faults (never reset).
    messages: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
    close: watch::Sender<bool>,
}

impl Conn {
    fn close_all(&self) {
        self.close.send_replace(true);
    }

    fn closed(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut rx = self.close.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).expect("register the proxy's listener");
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    let n = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::spawn(serve(Arc::clone(&shared), n, client));
                }
            }
        }
    }
}

async fn serve(shared: Arc<Shared>, n: u64, client: TcpStream) {
    shared.with_stats(n, |_| {});
    let conn = Arc::new(Conn {
        n,
        startup: Mutex::new(None),
        expect_answer: AtomicBool::new(false),
        raw: AtomicBool::new(false),
        stalled: AtomicBool::new(false),
        server_spoke: AtomicBool::new(true),
        messages: [AtomicU64::new(0), AtomicU64::new(0)],
        bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        close: watch::channel(false).0,
    });
    let stall_now = shared.fire(&conn, |f| match f {
        Fault::Stall { conn } if !conn.by_startup() => Some(Action::Stall),
        _ => None,
    });
    if stall_now.is_some() {
        hold(client).await;
    } else if let Ok(upstream) = TcpStream::connect(shared.upstream).await {
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (cr, cw) = client.into_split();
        let (sr, sw) = upstream.into_split();
        let (c2s_tx, c2s_rx) = mpsc::unbounded_channel();
        let (s2c_tx, s2c_rx) = mpsc::unbounded_channel();
        let c2s = Dir::ClientToServer;
        let s2c = Dir::ServerToClient;
        tokio::join!(
            pump_in(c2s, cr, c2s_tx, &conn, &shared),
            pump_out(c2s, sw, c2s_rx, &conn),
            pump_in(s2c, sr, s2c_tx, &conn, &shared),
            pump_out(s2c, cw, s2c_rx, &conn),
        );
    }
    shared.with_stats(n, |c| c.open = false);
}

/// A stalled-at-accept connection: read and drop whatever the client sends until it closes.
async fn hold(mut client: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = client.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// What travels from a direction's reader to its writer.
enum Item {
    Data(Vec<u8>, Instant),
    Cut(Instant),
    Eof(Instant),
}

/// Reads one direction, frames it, applies the faults and queues what is to be forwarded.
async fn pump_in(
    dir: Dir,
    mut r: OwnedReadHalf,
    tx: mpsc::UnboundedSender<Item>,
    conn: &Conn,
    shared: &Shared,
) {
    let mut framer = Framer::new(dir);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            _ = conn.closed() => return,
            read = r.read(&mut buf) => match read {
                Ok(n) if n > 0 => n,
                _ => {
                    // EOF or error: a stalled connection ends here; otherwise pass the EOF on.
                    if conn.stalled.load(Ordering::SeqCst) {
                        conn.close_all();
                    } else {
                        let _ = tx.send(Item::Eof(Instant::now() + latency(shared, dir)));
                    }
                    return;
                }
            },
        };
        let due = Instant::now() + latency(shared, dir);
        let mut pending = Vec::new();
        for unit in framer.push(&buf[..n], conn) {
            if conn.stalled.load(Ordering::SeqCst) {
                break;
            }
            match step(dir, unit, conn, shared, &mut pending) {
                Some(Action::Cut(_)) => {
                    let _ = tx.send(Item::Data(std::mem::take(&mut pending), due));
                    let _ = tx.send(Item::Cut(due));
                    return;
                }
                Some(Action::Stall) => conn.stalled.store(true, Ordering::SeqCst),
                None => {}
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(Item::Data(pending, due));
        }
    }
}

fn latency(shared: &Shared, dir: Dir) -> Duration {
    lock(&shared.latency)[dir.idx()]
}

/// Applies the faults to one framed unit and appends what gets through to `pending`.
fn step(
    dir: Dir,
    unit: Unit,
    conn: &Conn,
    shared: &Shared,
    pending: &mut Vec<u8>,
) -> Option<Action> {
    let d = dir.idx();
    let len = unit.bytes.len() as u64;
    let sent = conn.bytes[d].load(Ordering::SeqCst);
    let cut = shared.fire(conn, |f| match f {
        Fault::CutAfterBytes { dir: fd, bytes, .. } if *fd == dir && sent + len >= *bytes => {
            Some(Action::Cut(bytes.saturating_sub(sent) as usize))
        }
        _ => None,
    });
    if let Some(Action::Cut(keep)) = cut {
        let keep = keep.min(unit.bytes.len());
        account(dir, &unit.bytes[..keep], None, conn, shared);
        pending.extend_from_slice(&unit.bytes[..keep]);
        return Some(Action::Cut(keep));
    }
    if let Some(tag) = unit.tag {
        let index = conn.messages[d].load(Ordering::SeqCst) + 1;
        let action = shared.fire(conn, |f| match f {
            Fault::CutAt {
                dir: fd, message, ..
            } if *fd == dir && *message == index => Some(Action::Cut(0)),
            Fault::StallAt {
                dir: fd, message, ..
            } if *fd == dir && *message == index => Some(Action::Stall),
            Fault::Stall { conn } if unit.startup && conn.by_startup() => Some(Action::Stall),
            _ => None,
        });
        if action.is_some() {
            return action;
        }
        conn.messages[d].fetch_add(1, Ordering::SeqCst);
        account(dir, &unit.bytes, Some(tag), conn, shared);
    } else {
        account(dir, &unit.bytes, None, conn, shared);
    }
    pending.extend_from_slice(&unit.bytes);
    None
}

/// Counts forwarded bytes (and a message when `tag` is given) for faults and statistics.
fn account(dir: Dir, bytes: &[u8], tag: Option<u8>, conn: &Conn, shared: &Shared) {
    if bytes.is_empty() {
        return;
    }
    conn.bytes[dir.idx()].fetch_add(bytes.len() as u64, Ordering::SeqCst);
    let new_flight = dir == Dir::ClientToServer && conn.server_spoke.swap(false, Ordering::SeqCst);
    let startup = lock(&conn.startup).clone();
    let encrypted = conn.raw.load(Ordering::SeqCst);
    shared.with_stats(conn.n, |c| {
        if c.startup.is_none() {
            c.startup = startup;
        }
        c.encrypted |= encrypted;
        c.flights += u64::from(new_flight);
        match dir {
            Dir::ClientToServer => c.bytes_to_server += bytes.len() as u64,
            Dir::ServerToClient => c.bytes_to_client += bytes.len() as u64,
        }
        if let Some(tag) = tag {
            match dir {
                Dir::ClientToServer => c.messages_to_server += 1,
                Dir::ServerToClient => c.messages_to_client += 1,
            }
            c.log.push((dir, tag));
        }
    });
}

/// Writes one direction's queued bytes when they are due; closes on a cut or a write error.
async fn pump_out(
    dir: Dir,
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Item>,
    conn: &Conn,
) {
    loop {
        let item = tokio::select! {
            _ = conn.closed() => return,
            item = rx.recv() => item,
        };
        let Some(item) = item else { return };
        let due = match &item {
            Item::Data(_, due) | Item::Cut(due) | Item::Eof(due) => *due,
        };
        tokio::select! {
            _ = conn.closed() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        match item {
            Item::Data(bytes, _) => {
                let written = tokio::select! {
                    _ = conn.closed() => return,
                    w = w.write_all(&bytes) => w,
                };
                if written.is_err() {
                    conn.close_all();
                    return;
                }
                if dir == Dir::ServerToClient {
                    conn.server_spoke.store(true, Ordering::SeqCst);
                }
            }
            Item::Cut(_) => {
                conn.close_all();
                return;
            }
            Item::Eof(_) => {
                let _ = w.shutdown().await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

/// A framed piece of one direction's stream.
struct Unit {
    /// The message's type byte (0 for an untyped startup-phase message); `None` for raw bytes
    /// after encryption was negotiated (or past something that is not PostgreSQL).
    tag: Option<u8>,
    /// Whether this is the client's StartupMessage.
    startup: bool,
    bytes: Vec<u8>,
}

/// Splits one direction's bytes into whole messages.
struct Framer {
    dir: Dir,
    buf: Vec<u8>,
    /// Client only: still before the StartupMessage (untyped packets).
    startup_phase: bool,
}

impl Framer {
    fn new(dir: Dir) -> Framer {
        Framer {
            dir,
            buf: Vec::new(),
            startup_phase: dir == Dir::ClientToServer,
        }
    }

    /// Appends `data` and returns every unit now complete.
    fn push(&mut self, data: &[u8], conn: &Conn) -> Vec<Unit> {
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

//! Inside the proxy's runtime: the accept loop, and per connection four pumps (a reader and a
//! writer each way) that frame, apply the armed faults, delay and forward.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::framing::{Framer, Unit};
use super::{ConnStats, Dir, Fault, FaultId, Startup, lock};

/// An armed fault.
pub(super) struct Armed {
    pub(super) id: FaultId,
    fault: Fault,
    once: bool,
}

/// State shared by the [`super::Proxy`] handle and the runtime.
pub(super) struct Shared {
    upstream: SocketAddr,
    pub(super) latency: Mutex<[Duration; 2]>,
    pub(super) faults: Mutex<Vec<Armed>>,
    pub(super) fired: Mutex<BTreeMap<FaultId, u64>>,
    next_fault: AtomicU64,
    pub(super) accepted: AtomicU64,
    pub(super) stats: Mutex<BTreeMap<u64, ConnStats>>,
}

/// What a fired fault does to the connection.
enum Action {
    /// Forward this many bytes of the unit, then close both sides.
    Cut(usize),
    /// Forward nothing more.
    Stall,
}

impl Shared {
    pub(super) fn new(upstream: SocketAddr) -> Shared {
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

    pub(super) fn arm(&self, fault: Fault, once: bool) -> FaultId {
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
pub(super) struct Conn {
    n: u64,
    pub(super) startup: Mutex<Option<Startup>>,
    /// The client sent SSLRequest/GSSENCRequest: the server's next byte is the answer.
    pub(super) expect_answer: AtomicBool,
    /// Encryption was negotiated: no more parsing.
    pub(super) raw: AtomicBool,
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

pub(super) async fn accept_loop(
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
    // Fires on the unit that reaches the limit; a connection already past it is left alone.
    let reaches = |limit: u64| sent + len >= limit && (sent < limit || sent == 0);
    let cut = shared.fire(conn, |f| match f {
        Fault::CutAfterBytes { dir: fd, bytes, .. } if *fd == dir && reaches(*bytes) => {
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

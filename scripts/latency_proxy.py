#!/usr/bin/env python3
"""A loopback TCP proxy for `make bench` that adds a fixed delay in each direction and counts
PostgreSQL round trips ("flights").

Usage: latency_proxy.py --upstream HOST:PORT [--delay-ms 10] [--max-seconds 900]

It listens on 127.0.0.1 on a free port and prints one JSON line on stdout when ready:
{"listen": PORT}. Then it reads control lines on stdin, answering each with one JSON line:
  stats   -> {"flights": F, "connections": C, "connect_flights": K, "bytes_up": .., "bytes_down": ..,
              "per_connection": [{"flights": .., "connect_flights": .., ...}, ...]}
  reset   -> forgets all counters (connections still open keep being counted from now on)
  quit    -> exits
It also exits by itself on stdin EOF (its parent went away) and after --max-seconds.

Each direction is a FIFO: a chunk read at time t is written at t + delay, so latency is added
without limiting bandwidth and pipelined messages stay pipelined. The TCP handshake itself is not
delayed (the client connects to this proxy on loopback), so opening a connection costs the
startup message's flight, not the SYN's.

A flight is the client starting to send after the server spoke *to the client*: the flag is set
when delayed server bytes are delivered to the client (not when they reach the proxy), so a client
that pipelines without waiting is not charged for replies still on the wire. The very first
message of a connection is a flight. A Terminate message ('X') never starts a flight: it expects
no answer. `connect_flights` are a connection's flights up to the server's first ReadyForQuery
delivered to the client (startup and authentication); the stream is parsed for that, and a
connection that switches to TLS is left unparsed (its connect_flights is null).
"""
import argparse, asyncio, json, struct, sys, time

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class Conn:
    """Counters and the minimal protocol state of one proxied connection."""

    def __init__(self, cid):
        self.cid = cid
        self.opened = time.monotonic()
        self.closed = None
        self.flights = 0
        self.connect_flights = None
        self.bytes_up = self.bytes_down = 0
        self.server_spoke = True  # so that the first message counts as a flight
        self.opaque = False  # switched to TLS: no more parsing
        self.cbuf = b""
        self.client_started = False  # past the untyped startup packet(s)
        self.sbuf = b""
        self.single_byte_replies = 0  # SSLRequest / GSSENCRequest answers pending
        self.ready = False  # first ReadyForQuery delivered

    def stats(self):
        return {"id": self.cid, "flights": self.flights, "connect_flights": self.connect_flights,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "seconds": round((self.closed or time.monotonic()) - self.opened, 4), "open": self.closed is None}

    def on_client_bytes(self, data):
        """Called when client bytes reach the proxy: counts flights message by message."""
        self.bytes_up += len(data)
        if self.opaque:
            if data and self.server_spoke:
                self.flights += 1
                self.server_spoke = False
            return
        self.cbuf += data
        while True:
            if not self.client_started:
                if len(self.cbuf) < 8:
                    return
                length, code = struct.unpack("!II", self.cbuf[:8])
                if len(self.cbuf) < length:
                    return
                self.cbuf = self.cbuf[length:]
                self._message_starts(terminate=False)
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    self.single_byte_replies += 1
                else:
                    self.client_started = True
                continue
            if len(self.cbuf) < 5:
                return
            kind = self.cbuf[:1]
            (length,) = struct.unpack("!I", self.cbuf[1:5])
            if len(self.cbuf) < 1 + length:
                return
            self.cbuf = self.cbuf[1 + length:]
            self._message_starts(terminate=kind == b"X")

    def _message_starts(self, terminate):
        if self.server_spoke and not terminate:
            self.flights += 1
            self.server_spoke = False

    def on_server_delivered(self, data):
        """Called when delayed server bytes have been written to the client."""
        self.bytes_down += len(data)
        if data:
            self.server_spoke = True
        if self.opaque or self.ready:
            return
        self.sbuf += data
        while self.sbuf:
            if self.single_byte_replies:
                answer, self.sbuf = self.sbuf[:1], self.sbuf[1:]
                self.single_byte_replies -= 1
                if answer in (b"S", b"G"):
                    self.opaque = True
                    self.sbuf = b""
                    return
                continue
            if len(self.sbuf) < 5:
                return
            kind = self.sbuf[:1]
            (length,) = struct.unpack("!I", self.sbuf[1:5])
            if len(self.sbuf) < 1 + length:
                return
            self.sbuf = self.sbuf[1 + length:]
            if kind == b"Z":
                self.ready = True
                self.connect_flights = self.flights
                self.sbuf = b""
                return


class Proxy:
    def __init__(self, upstream, delay):
        self.host, port = upstream.rsplit(":", 1)
        self.port = int(port)
        self.delay = delay
        self.conns = []
        self.next_id = 0

    def reset(self):
        self.conns = [c for c in self.conns if c.closed is None]
        for c in self.conns:
            c.flights = 0
            c.bytes_up = c.bytes_down = 0
            c.opened = time.monotonic()

    def stats(self):
        per = [c.stats() for c in self.conns]
        known = [c.connect_flights for c in self.conns if c.connect_flights is not None]
        return {"flights": sum(c.flights for c in self.conns), "connections": len(per),
                "connect_flights": sum(known), "open": sum(1 for c in self.conns if c.closed is None),
                "bytes_up": sum(c.bytes_up for c in self.conns),
                "bytes_down": sum(c.bytes_down for c in self.conns), "per_connection": per}

    async def pump(self, reader, writer, on_read, on_delivered):
        """Reads chunks, and writes each one `delay` later, in order."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, chunk = await queue.get()
                if chunk is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
                if on_delivered:
                    on_delivered(chunk)
            writer.close()

        task = asyncio.create_task(deliver())
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if on_read:
                    on_read(chunk)
                queue.put_nowait((time.monotonic() + self.delay, chunk))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((time.monotonic() + self.delay, None))
        try:
            await task
        except (ConnectionError, OSError):
            pass

    async def handle(self, c_reader, c_writer):
        conn = Conn(self.next_id)
        self.next_id += 1
        self.conns.append(conn)
        try:
            s_reader, s_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            c_writer.close()
            conn.closed = time.monotonic()
            return
        await asyncio.gather(
            self.pump(c_reader, s_writer, conn.on_client_bytes, None),
            self.pump(s_reader, c_writer, None, conn.on_server_delivered))
        conn.closed = time.monotonic()


async def control(proxy, done):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = line.decode().strip()
        if cmd == "stats":
            print(json.dumps(proxy.stats()), flush=True)
        elif cmd == "reset":
            proxy.reset()
            print(json.dumps({"reset": True}), flush=True)
        elif cmd == "quit":
            break
        elif cmd:
            print(json.dumps({"error": f"unknown command {cmd!r}: stats, reset or quit"}), flush=True)
    done.set()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the database server")
    ap.add_argument("--delay-ms", type=float, default=10.0, help="delay added in each direction")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="exit by itself after this long")
    args = ap.parse_args()
    proxy = Proxy(args.upstream, args.delay_ms / 1000.0)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    print(json.dumps({"listen": server.sockets[0].getsockname()[1]}), flush=True)
    done = asyncio.Event()
    ctl = asyncio.create_task(control(proxy, done))
    try:
        await asyncio.wait_for(done.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        print(json.dumps({"exit": "max-seconds reached"}), file=sys.stderr, flush=True)
    ctl.cancel()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())

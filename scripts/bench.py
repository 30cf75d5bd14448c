#!/usr/bin/env python3
"""`make bench`: crdb-migrate against its floor, as ratios taken in the same run.

Loopback: N trivial migrations (CREATE TABLE t_i (id INT PRIMARY KEY, v TEXT)) are applied,
re-run as a no-op, and rolled back, interleaved round by round with the same work done by psql
in one session (one transaction per migration plus its ledger row: the floor). Reports median
ratios, peak RSS (/usr/bin/time -v) and the stripped release binary's size.

Network: NET_N migrations through scripts/latency_proxy.py, which adds 10 ms
each way (a 20 ms round trip), against the psql floor through the same proxy in the same run.
The floor sends each migration as ONE simple query (`BEGIN \\; CREATE \\; INSERT \\; COMMIT` on
one line, so psql does not split it): one round trip and one commit per migration; the proxy's
flight count checks that. Round trips per migration come from the flights of an N and an N/2
run, fixed round trips = flights(N) - N * per-migration (connection startup included).

Scale: `verify` and `plan` on 1,000 and 10,000 generated files, by the CPU
time (user + system) of the crdb-migrate process (os.wait4), as the ratio 10k / 1k.

Fleet: FLEET_TARGETS schemas of one database (schema per tenant) x FLEET_MIGRATIONS migrations:
one `migrate --targets FILE` process at MIGRATE_PARALLELISM=FLEET_PARALLELISM (DATABASE_URL with
`options=-c search_path={target}`) against a loop of one `crdb-migrate migrate` process per
target, and against the same loop with dbmate (npm's `dbmate`, a static Go binary, installed
into .cache/bench/npm on first use; schema through `?search_path=`); then the no-op pass over the
up-to-date targets against the loop, and the fleet's peak RSS (a second fleet, at
FLEET_RSS_PARALLELISM). Also the server's floor: the same
DDL and ledger rows by psql in FLEET_PARALLELISM sessions at once, which bounds what any fleet
can gain over a loop (loop / floor). Skipped, saying so, when the binary has no `--targets`.

Prints one summary table (measure, result, target, PASS/FAIL) and exits 0 whatever the
verdicts: it is a report. It exits non-zero only when a step crashed. Environment overrides:
BENCH_N (500), BENCH_ROUNDS (3), BENCH_NET_N (100), BENCH_NET_ROUNDS (BENCH_ROUNDS),
BENCH_NET_DELAY_MS (10), BENCH_SCALE ("1000,10000"), BENCH_BIN (target/release/crdb-migrate),
BENCH_FLEET_TARGETS (500), BENCH_FLEET_MIGRATIONS (20), BENCH_FLEET_PARALLELISM (4, the
default MIGRATE_PARALLELISM: the timed runs), BENCH_FLEET_RSS_PARALLELISM (16: the memory row),
BENCH_FLEET_LOOP (targets the loops run, default all; fewer are scaled up to all, and the row
says so), BENCH_FLEET_BIN (BENCH_BIN), BENCH_PEER (dbmate, or none), BENCH_ONLY (the sections
to run, comma-separated: loopback,network,scale,fleet).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

N = int(os.environ.get("BENCH_N", "500"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
NET_N = int(os.environ.get("BENCH_NET_N", "100"))
NET_ROUNDS = int(os.environ.get("BENCH_NET_ROUNDS", str(ROUNDS)))
NET_DELAY_MS = float(os.environ.get("BENCH_NET_DELAY_MS", "10"))
ONLY = os.environ.get("BENCH_ONLY", "loopback,network,scale,fleet").split(",")
SCALE = [int(x) for x in os.environ.get("BENCH_SCALE", "1000,10000").split(",")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "crdb-migrate")
LEDGER = ("CREATE TABLE _migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
          "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), checksum TEXT, duration_ms BIGINT, "
          "applied_by TEXT, fence BIGINT, status TEXT NOT NULL DEFAULT 'applied', statements_done BIGINT NOT NULL DEFAULT 0);\n")


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def psql(url, sql):
    return sh(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], input=sql).stdout


def with_db(base_url, name):
    return base_url.rsplit("/", 1)[0] + f"/{name}?sslmode=disable"


def via(url, port):
    """The same URL with its host:port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    userhost, path = rest.split("/", 1)
    user = userhost.rsplit("@", 1)[0] + "@" if "@" in userhost else ""
    return f"{scheme}://{user}127.0.0.1:{port}/{path}"


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def write_migrations(directory, n):
    os.makedirs(directory)
    for i in range(1, n + 1):
        with open(os.path.join(directory, f"{i:05d}_t_{i}.sql"), "w") as f:
            f.write(f"CREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n-- @UNDO\nDROP TABLE t_{i};\n")
    return directory


class Db:
    """Fresh databases on the throwaway server, named in sequence."""

    def __init__(self, url):
        self.url, self.n = url, 0

    def fresh(self, tag):
        self.n += 1
        name = f"bench_{tag}_{self.n}"
        psql(with_db(self.url, "postgres"), f"CREATE DATABASE {name};")
        return with_db(self.url, name)


class Row:
    """One line of the summary table."""

    def __init__(self, measure, result, target=None, ok=None):
        self.measure, self.result, self.target, self.ok = measure, result, target, ok

    def verdict(self):
        return "-" if self.ok is None else ("PASS" if self.ok else "FAIL")


def main():
    tmp = tempfile.mkdtemp(prefix="crdb-migrate-bench.")
    os.chmod(tmp, 0o755)  # the database server may run as the postgres user
    dbdir = os.path.join(tmp, "db")
    out = sh([os.path.join(ROOT, "scripts", "throwaway-db.sh"), "start", dbdir]).stdout
    url = out.split("'")[1]
    started = time.perf_counter()
    try:
        db = Db(url)
        rows = []
        for name, section in (("loopback", loopback), ("network", network), ("scale", scale), ("fleet", fleet)):
            if name in ONLY:
                rows += section(db, tmp)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "throwaway-db.sh"), "stop", dbdir])
        shutil.rmtree(tmp, ignore_errors=True)  # the generated files (10,000 of them at scale)
    print(f"\nSummary ({time.perf_counter() - started:.0f} s)")
    widths = [max(len(r.measure) for r in rows), max(len(r.result) for r in rows),
              max(len(r.target or "-") for r in rows)]
    print(f"| {'measure':<{widths[0]}} | {'result':<{widths[1]}} | {'target':<{widths[2]}} | verdict |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|---------|")
    for r in rows:
        print(f"| {r.measure:<{widths[0]}} | {r.result:<{widths[1]}} | {r.target or '-':<{widths[2]}} | {r.verdict():<7} |")
    return 0


def env_for(mig, **extra):
    return dict(os.environ, MIGRATIONS_DIR=mig, LOG_LEVEL="warn", MIGRATE_TERMINATION_LOG="/dev/null", **extra)


def loopback(db, tmp):
    mig = write_migrations(os.path.join(tmp, "migrations"), N)
    floor_up = LEDGER + "".join(
        f"BEGIN;\nCREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n"
        f"INSERT INTO _migrations (version, description, checksum) VALUES ({i}, 't {i}', '{'0' * 64}');\nCOMMIT;\n"
        for i in range(1, N + 1))
    floor_noop = "SELECT version, description, applied_at, checksum, status FROM _migrations ORDER BY 1;\n"
    floor_down = "".join(
        f"BEGIN;\nDROP TABLE t_{i};\nDELETE FROM _migrations WHERE version = {i};\nCOMMIT;\n"
        for i in range(N, 0, -1))
    env = env_for(mig)

    def ours(db_url, *args):
        sh([BIN, *args], env=dict(env, DATABASE_URL=db_url))

    samples = {k: [] for k in ["floor_up", "ours_up", "floor_noop", "ours_noop", "floor_down", "ours_down"]}
    for r in range(ROUNDS):
        f_url, o_url = db.fresh("floor"), db.fresh("ours")
        samples["floor_up"].append(timed(lambda: psql(f_url, floor_up)))
        samples["ours_up"].append(timed(lambda: ours(o_url, "migrate")))
        samples["floor_noop"].append(timed(lambda: psql(f_url, floor_noop)))
        samples["ours_noop"].append(timed(lambda: ours(o_url, "migrate")))
        samples["floor_down"].append(timed(lambda: psql(f_url, floor_down)))
        samples["ours_down"].append(timed(lambda: ours(o_url, "rollback", "--target", "0")))
        print(f"round {r + 1}/{ROUNDS}: " + ", ".join(f"{k}={v[-1] * 1000:.0f}ms" for k, v in samples.items()), flush=True)

    # Peak RSS of a full apply, on a fresh database.
    e = dict(env, DATABASE_URL=db.fresh("rss"))
    res = subprocess.run(["/usr/bin/time", "-v", BIN, "migrate"], env=e, capture_output=True, text=True, check=True)
    rss_kib = int(next(l for l in res.stderr.splitlines() if "Maximum resident set size" in l).split(":")[1])
    res = subprocess.run(["/usr/bin/time", "-v", BIN, "migrate"], env=e, capture_output=True, text=True, check=True)
    rss_noop_kib = int(next(l for l in res.stderr.splitlines() if "Maximum resident set size" in l).split(":")[1])
    size = os.path.getsize(BIN)

    med = {k: statistics.median(v) for k, v in samples.items()}
    ratios = [
        ("apply all", med["ours_up"] / med["floor_up"], 1.05),
        ("no-op re-run", med["ours_noop"] / med["floor_noop"], 1.0),
        ("rollback all", med["ours_down"] / med["floor_down"], None),
    ]
    print(f"\ncrdb-migrate vs psql floor, N={N}, {ROUNDS} interleaved rounds (medians)")
    for name, ratio, target in ratios:
        verdict = "" if target is None else ("  target <= %.2fx: %s" % (target, "met" if ratio <= target else "MISSED"))
        print(f"  {name:<14} {ratio:5.2f}x{verdict}")
    for k in ("up", "noop", "down"):
        print(f"  {k:<5} ours {med['ours_' + k] * 1000:7.1f} ms   floor {med['floor_' + k] * 1000:7.1f} ms")
    print(f"  peak RSS apply {rss_kib / 1024:.1f} MiB, no-op {rss_noop_kib / 1024:.1f} MiB  target <= 6 MiB: {'met' if max(rss_kib, rss_noop_kib) <= 6 * 1024 else 'MISSED'}")
    print(f"  stripped release binary {size / 1048576:.2f} MiB  target <= 6 MiB: {'met' if size <= 6 * 1048576 else 'MISSED'}")
    rss = max(rss_kib, rss_noop_kib)
    return [
        Row(f"apply N={N} loopback vs floor", f"{ratios[0][1]:.2f}x", "<= 1.05x", ratios[0][1] <= 1.05),
        Row(f"no-op N={N} loopback vs floor", f"{ratios[1][1]:.2f}x", "<= 1.0x", ratios[1][1] <= 1.0),
        Row(f"rollback N={N} loopback vs floor", f"{ratios[2][1]:.2f}x"),
        Row("peak RSS (apply, no-op)", f"{rss_kib / 1024:.1f}, {rss_noop_kib / 1024:.1f} MiB", "<= 6 MiB", rss <= 6 * 1024),
        Row("stripped release binary", f"{size / 1048576:.2f} MiB", "<= 6 MiB", size <= 6 * 1048576),
    ]


class LatencyProxy:
    """scripts/latency_proxy.py as a child process, driven over its stdin/stdout."""

    def __init__(self, upstream_port, delay_ms):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "latency_proxy.py"), "--upstream",
             f"127.0.0.1:{upstream_port}", "--delay-ms", str(delay_ms), "--max-seconds", "900"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.p.stdout.readline())["listen"]

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"latency proxy exited (rc {self.p.poll()})")
        return json.loads(line)

    def settled(self, deadline_s=10.0):
        """Stats once every connection of the finished run has closed (bounded wait)."""
        end = time.monotonic() + deadline_s
        while True:
            s = self.ask("stats")
            if s["open"] == 0 or time.monotonic() > end:
                return s
            time.sleep(0.02)

    def measure(self, fn):
        """Runs fn through the proxy: (wall seconds, stats of its connections)."""
        self.ask("reset")
        dt = timed(fn)
        return dt, self.settled()

    def close(self):
        try:
            self.ask("quit")
        except (BrokenPipeError, RuntimeError):
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def network(db, tmp):
    if NET_N < 2:
        raise SystemExit("BENCH_NET_N must be at least 2 (round trips come from an N and an N/2 run)")
    half = NET_N // 2
    migs = {n: write_migrations(os.path.join(tmp, f"net_migrations_{n}"), n) for n in (NET_N, half)}
    upstream_port = int(db.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    proxy = LatencyProxy(upstream_port, NET_DELAY_MS)
    try:
        return network_runs(db, proxy, migs, half)
    finally:
        proxy.close()


def network_runs(db, proxy, migs, half):
    def floor_sql(n):
        # One line per migration: psql sends it as one simple query, so one flight and one commit.
        return LEDGER + "".join(
            f"BEGIN \\; CREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT) \\; "
            f"INSERT INTO _migrations (version, description, checksum) VALUES ({i}, 't {i}', '{'0' * 64}') \\; COMMIT;\n"
            for i in range(1, n + 1))

    # A long lease TTL keeps heartbeats (every TTL/3) out of the flight counts.
    def ours(n, db_url, *args):
        e = env_for(migs[n], DATABASE_URL=via(db_url, proxy.port), MIGRATE_LEASE_TTL="300s")
        return lambda: sh([BIN, *args], env=e)

    res = {k: [] for k in ("floor", "floor_half", "ours", "ours_half")}
    flights = {k: [] for k in res}
    stats = {}
    rtt = 2 * NET_DELAY_MS
    for r in range(NET_ROUNDS):
        for key, n, who in (("floor", NET_N, "floor"), ("ours", NET_N, "ours"),
                            ("floor_half", half, "floor"), ("ours_half", half, "ours")):
            url = db.fresh(f"net_{who}")
            fn = (lambda u=url, n=n: psql(via(u, proxy.port), floor_sql(n))) if who == "floor" else ours(n, url, "migrate")
            dt, s = proxy.measure(fn)
            res[key].append(dt)
            flights[key].append(s["flights"])
            stats[key] = s
            if key == "ours":
                noop_dt, noop = proxy.measure(ours(n, url, "migrate"))
        print(f"net round {r + 1}/{NET_ROUNDS} ({rtt:g} ms RTT): " + ", ".join(
            f"{k}={res[k][-1] * 1000:.0f}ms/{flights[k][-1]} flights" for k in res), flush=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    fl = {k: statistics.median(v) for k, v in flights.items()}
    span = NET_N - half
    per_ours = (fl["ours"] - fl["ours_half"]) / span
    per_floor = (fl["floor"] - fl["floor_half"]) / span
    fixed_ours = fl["ours"] - NET_N * per_ours
    fixed_floor = fl["floor"] - NET_N * per_floor
    ratio = med["ours"] / med["floor"]
    o = stats["ours"]
    noop_after_connect = noop["flights"] - noop["connect_flights"]
    print(f"\nthrough a {rtt:g} ms round trip, N={NET_N} (and N={half}), {NET_ROUNDS} interleaved rounds (medians)")
    print(f"  apply ours {med['ours'] * 1000:7.0f} ms   floor {med['floor'] * 1000:7.0f} ms   ratio {ratio:.2f}x")
    print(f"  round trips per migration: ours {per_ours:.2f}, floor {per_floor:.2f}")
    print(f"  fixed round trips: ours {fixed_ours:.1f} over {o['connections']} connections "
          f"({o['connect_flights']} of them connection startup), floor {fixed_floor:.1f}")
    print(f"  per connection (ours, N={NET_N}): " + ", ".join(
        f"#{c['id']}: {c['flights']} flights, {c['connect_flights']} to connect" for c in o["per_connection"]))
    print(f"  no-op re-run {noop_dt * 1000:.0f} ms: {noop['flights']} flights over {noop['connections']} "
          f"connection(s), {noop_after_connect} after connecting")
    return [
        Row(f"apply N={NET_N} at {rtt:g} ms RTT vs floor", f"{ratio:.2f}x", "<= 0.25x", ratio <= 0.25),
        Row("  floor round trips per migration (check)", f"{per_floor:.2f}", "= 1", abs(per_floor - 1) < 0.05),
        Row("round trips per transactional migration", f"{per_ours:.2f}", "<= 1", per_ours <= 1.0 + 1e-9),
        # Schema drift adds none here: its stored read rides in the prepare flight, its store in
        # the release's. (A run on a database stored at its current version adds one, the live
        # comparison; these fresh databases have none stored.)
        Row("fixed round trips, run with work", f"{fixed_ours:.0f}", "<= 8", fixed_ours <= 8 + 1e-9),
        Row("no-op round trips after connecting", f"{noop_after_connect}", "<= 3", noop_after_connect <= 3),
    ]


def cpu_seconds(args, env):
    """CPU time (user + system) of one child process, from its own resource usage."""
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {err.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime


def scale(db, tmp):
    cpu = {}
    for n in SCALE:
        mig = write_migrations(os.path.join(tmp, f"scale_{n}"), n)
        plan_env = env_for(mig, DATABASE_URL=db.fresh(f"plan{n}"))
        verify_env = env_for(mig)
        cpu[("verify", n)] = statistics.median(cpu_seconds([BIN, "verify"], verify_env) for _ in range(ROUNDS))
        cpu[("plan", n)] = statistics.median(cpu_seconds([BIN, "plan"], plan_env) for _ in range(ROUNDS))
    small, large = SCALE[0], SCALE[-1]
    bound = 11.0 * large / small / 10.0  # "10k costs at most about 11x 1k", scaled to other sizes
    print(f"\nscale: CPU seconds of the process (median of {ROUNDS})")
    rows = []
    for cmd in ("verify", "plan"):
        print(f"  {cmd:<6} " + ", ".join(f"{n} files {cpu[(cmd, n)]:.3f} s" for n in SCALE))
        ratio = cpu[(cmd, large)] / max(cpu[(cmd, small)], 1e-6)
        rows.append(Row(f"{cmd} CPU, {large} files vs {small}",
                        f"{ratio:.1f}x ({cpu[(cmd, small)]:.3f} -> {cpu[(cmd, large)]:.3f} s)",
                        f"<= {bound:g}x", ratio <= bound))
    return rows


FLEET_TARGETS = int(os.environ.get("BENCH_FLEET_TARGETS", "500"))
FLEET_MIGRATIONS = int(os.environ.get("BENCH_FLEET_MIGRATIONS", "20"))
FLEET_PARALLELISM = int(os.environ.get("BENCH_FLEET_PARALLELISM", "4"))
FLEET_RSS_PARALLELISM = int(os.environ.get("BENCH_FLEET_RSS_PARALLELISM", "16"))
FLEET_LOOP = min(int(os.environ.get("BENCH_FLEET_LOOP", str(FLEET_TARGETS))), FLEET_TARGETS)
FLEET_BIN = os.environ.get("BENCH_FLEET_BIN") or BIN
PEER = os.environ.get("BENCH_PEER", "dbmate")
DBMATE_PIN = "dbmate@2.36.0"


def fleet_targets():
    return [f"tenant_{i:04d}" for i in range(1, FLEET_TARGETS + 1)]


def fleet_db(db, tag):
    """A fresh database holding one empty schema per target; its URL."""
    url = db.fresh(tag)
    psql(url, "".join(f"CREATE SCHEMA {t};\n" for t in fleet_targets()))
    return url


def tables_in(url, schemas):
    """The migrated tables (t_*) in the given schemas: proof that a run did the work."""
    names = ",".join(f"'{s}'" for s in schemas)
    return int(psql(url, f"SELECT count(*) FROM pg_tables WHERE schemaname IN ({names}) AND tablename LIKE 't\\_%';").strip())


def dbmate_bin():
    """dbmate's own binary from npm's `dbmate` package (a static Go build in @dbmate/linux-x64),
    installed once into .cache/bench/npm; called directly, not through the package's node shim."""
    prefix = os.path.join(ROOT, ".cache", "bench", "npm")
    binary = os.path.join(prefix, "node_modules", "@dbmate", "linux-x64", "bin", "dbmate")
    if not os.path.exists(binary):
        os.makedirs(prefix, exist_ok=True)
        print(f"installing {DBMATE_PIN} into {prefix}", flush=True)
        sh(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--silent", DBMATE_PIN])
    return binary


def write_dbmate_migrations(directory, n):
    os.makedirs(directory)
    for i in range(1, n + 1):
        with open(os.path.join(directory, f"{i:05d}_t_{i}.sql"), "w") as f:
            f.write(f"-- migrate:up\nCREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n\n-- migrate:down\nDROP TABLE t_{i};\n")
    return directory


def peak_rss_kib(stderr):
    return int(next(l for l in stderr.splitlines() if "Maximum resident set size" in l).split(":")[1])


def fleet(db, tmp):
    helped = subprocess.run([FLEET_BIN, "migrate", "--help"], capture_output=True, text=True)
    if "--targets" not in helped.stdout + helped.stderr:
        print(f"\nfleet: skipped, {FLEET_BIN} has no `migrate --targets` (set BENCH_FLEET_BIN)")
        return [Row(f"fleet {FLEET_TARGETS} schemas x {FLEET_MIGRATIONS} migrations", "skipped: no --targets")]
    load = [os.getloadavg()[0]]
    mig = write_migrations(os.path.join(tmp, "fleet_migrations"), FLEET_MIGRATIONS)
    targets = fleet_targets()
    listed = os.path.join(tmp, "targets.txt")
    with open(listed, "w") as f:
        f.write("".join(t + "\n" for t in targets))
    want = FLEET_TARGETS * FLEET_MIGRATIONS

    def schema_url(url, schema):  # one target's URL, as a user of a loop would write it
        return f"{url}&options=-c%20search_path%3D{schema}"

    # The fleet: one process, every target, MIGRATE_PARALLELISM at once; timed under time -v.
    f_url = fleet_db(db, "fleet")
    cmd = ["/usr/bin/time", "-v", FLEET_BIN, "migrate", "--targets", listed]

    def fleet_runs(url, parallelism):  # apply then no-op: {key: (seconds, peak RSS KiB)}
        f_env = env_for(mig, DATABASE_URL=schema_url(url, "{target}"), MIGRATE_PARALLELISM=str(parallelism))
        runs = {}
        for key in ("apply", "noop"):
            t = time.perf_counter()
            res = subprocess.run(cmd, env=f_env, capture_output=True, text=True)
            runs[key] = (time.perf_counter() - t, peak_rss_kib(res.stderr))
            if res.returncode != 0:
                raise RuntimeError(f"fleet {key} exited {res.returncode}: {res.stderr[-2000:]}")
        got = tables_in(url, targets)
        if got != want:
            raise RuntimeError(f"fleet: {got} tables after the run, expected {want}")
        return runs

    # The server's floor: the same SQL through psql, FLEET_PARALLELISM sessions at once, each
    # taking every FLEET_PARALLELISM-th target: per target its ledger, then per migration one
    # transaction of the DDL and its ledger row. No process can migrate the fleet faster than
    # this, so no loop can be beaten by more than loop / floor.
    floor_url = fleet_db(db, "floor")
    checkpoint(db)
    floor = fleet_floor(floor_url, tmp, targets)
    if tables_in(floor[1], targets) != want:
        raise RuntimeError("fleet floor: tables missing after the psql run")

    checkpoint(db)
    runs = fleet_runs(f_url, FLEET_PARALLELISM)
    # The memory row: the same fleet again, at FLEET_RSS_PARALLELISM, on a fresh database.
    rss_runs = fleet_runs(fleet_db(db, "fleet_rss"), FLEET_RSS_PARALLELISM)

    # The loops: one process per target, one after the other (the first FLEET_LOOP targets).
    looped = targets[:FLEET_LOOP]
    scale_up = FLEET_TARGETS / FLEET_LOOP
    l_url = fleet_db(db, "loop")
    checkpoint(db)

    def loop(run_one):
        t = time.perf_counter()
        for target in looped:
            run_one(target)
        return (time.perf_counter() - t) * scale_up

    ours = lambda t: sh([BIN, "migrate"], env=env_for(mig, DATABASE_URL=schema_url(l_url, t)))
    loop_apply = loop(ours)
    loop_noop = loop(ours)
    if tables_in(l_url, looped) != FLEET_LOOP * FLEET_MIGRATIONS:
        raise RuntimeError("loop of crdb-migrate processes: tables missing after the run")
    peer = None
    if PEER == "dbmate":
        dbmate, d_mig = dbmate_bin(), write_dbmate_migrations(os.path.join(tmp, "fleet_dbmate"), FLEET_MIGRATIONS)
        d_url = fleet_db(db, "dbmate")
        peer = loop(lambda t: sh([dbmate, "--url", f"{d_url}&search_path={t}", "--migrations-dir", d_mig,
                                  "--no-dump-schema", "migrate"]))
        if tables_in(d_url, looped) != FLEET_LOOP * FLEET_MIGRATIONS:
            raise RuntimeError("loop of dbmate processes: tables missing after the run")
    load.append(os.getloadavg()[0])
    return fleet_report(runs, rss_runs, loop_apply, loop_noop, peer, load, floor[0])


def checkpoint(db):
    """Writes out what the runs before left dirty, so that the next timed run does not pay for
    it (20,000 tables' catalog rows make a checkpoint come due)."""
    psql(with_db(db.url, "postgres"), "CHECKPOINT;")


def fleet_floor(url, tmp, targets):
    """psql in FLEET_PARALLELISM sessions running what the fleet runs, less our bookkeeping
    beyond the ledger; (seconds, url)."""
    scripts = []
    for w in range(FLEET_PARALLELISM):
        path = os.path.join(tmp, f"fleet_floor_{w}.sql")
        with open(path, "w") as f:
            for t in targets[w::FLEET_PARALLELISM]:
                f.write(f"SET search_path = {t};\n{LEDGER}")
                for i in range(1, FLEET_MIGRATIONS + 1):
                    f.write(f"BEGIN;\nCREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n"
                            f"INSERT INTO _migrations (version, description, checksum) VALUES ({i}, 't {i}', '{'0' * 64}');\nCOMMIT;\n")
        scripts.append(path)
    t = time.perf_counter()
    procs = [subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", p], stdout=subprocess.DEVNULL)
             for p in scripts]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("fleet floor: a psql session failed")
    return time.perf_counter() - t, url


def fleet_report(runs, rss_runs, loop_apply, loop_noop, peer, load, floor_s):
    (apply_s, _), (noop_s, _) = runs["apply"], runs["noop"]
    (_, apply_rss), (_, noop_rss) = rss_runs["apply"], rss_runs["noop"]
    shape = f"{FLEET_TARGETS} schemas x {FLEET_MIGRATIONS} migrations"
    scaled = "" if FLEET_LOOP == FLEET_TARGETS else f", loops of {FLEET_LOOP} scaled to {FLEET_TARGETS}"
    print(f"\nfleet: {shape}, MIGRATE_PARALLELISM={FLEET_PARALLELISM}{scaled}")
    print(f"  apply  fleet {apply_s:6.1f} s   loop of processes {loop_apply:6.1f} s" +
          (f"   loop of dbmate {peer:6.1f} s" if peer is not None else ""))
    print(f"  floor  psql in {FLEET_PARALLELISM} sessions {floor_s:6.1f} s: the fleet is {apply_s / floor_s:.2f}x it; "
          f"against this floor no fleet beats the loop of processes by more than {loop_apply / floor_s:.1f}x")
    print(f"  no-op  fleet {noop_s:6.1f} s   loop of processes {loop_noop:6.1f} s")
    print(f"  fleet peak RSS at MIGRATE_PARALLELISM={FLEET_RSS_PARALLELISM}: apply {apply_rss / 1024:.1f} MiB, "
          f"no-op {noop_rss / 1024:.1f} MiB")
    # Parallelism only pays with idle cores: a busy machine shrinks the fleet's ratios.
    print(f"  load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} cores")
    rows = [Row(f"fleet apply {shape} vs a loop of processes", f"{loop_apply / apply_s:.1f}x faster "
                f"({apply_s:.1f} vs {loop_apply:.1f} s{scaled})", ">= 5x", loop_apply / apply_s >= 5),
            Row(f"fleet apply vs the same SQL by psql in {FLEET_PARALLELISM} sessions", f"{apply_s / floor_s:.2f}x "
                f"({apply_s:.1f} vs {floor_s:.1f} s; loop / floor {loop_apply / floor_s:.1f}x)")]
    if peer is not None:
        rows.append(Row(f"fleet apply {shape} vs a loop of dbmate", f"{peer / apply_s:.1f}x faster "
                        f"({apply_s:.1f} vs {peer:.1f} s)", ">= 5x", peer / apply_s >= 5))
    rows += [
        Row(f"fleet no-op, {FLEET_TARGETS} up-to-date targets vs a loop", f"{loop_noop / noop_s:.1f}x faster "
            f"({noop_s:.2f} vs {loop_noop:.1f} s)", ">= 10x", loop_noop / noop_s >= 10),
        Row(f"fleet peak RSS at parallelism {FLEET_RSS_PARALLELISM} (apply, no-op)",
            f"{apply_rss / 1024:.1f}, {noop_rss / 1024:.1f} MiB", "< 24 MiB", max(apply_rss, noop_rss) < 24 * 1024),
    ]
    return rows


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`make bench`: crdb-migrate against its floor, as ratios taken in the same run.

N trivial migrations (CREATE TABLE t_i (id INT PRIMARY KEY, v TEXT)) are applied, re-run as a
no-op, and rolled back, interleaved round by round with the same work done by psql in one
session (one transaction per migration plus its ledger row: the floor). Reports median ratios,
peak RSS (/usr/bin/time -v) and the stripped release binary's size, against the targets:
apply <= 1.05x floor, no-op <= 1.0x floor, peak RSS <= 6 MiB, binary <= 6 MiB.
"""
import os, statistics, subprocess, sys, tempfile, time

N = int(os.environ.get("BENCH_N", "500"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "crdb-migrate")


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def psql(url, sql):
    return sh(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], input=sql).stdout


def with_db(base_url, name):
    return base_url.rsplit("/", 1)[0] + f"/{name}?sslmode=disable"


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    tmp = tempfile.mkdtemp(prefix="crdb-migrate-bench.")
    os.chmod(tmp, 0o755)  # the database server may run as the postgres user
    dbdir = os.path.join(tmp, "db")
    out = sh([os.path.join(ROOT, "scripts", "throwaway-db.sh"), "start", dbdir]).stdout
    url = out.split("'")[1]
    try:
        run(url, tmp)
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "throwaway-db.sh"), "stop", dbdir])


def run(url, tmp):
    mig = os.path.join(tmp, "migrations")
    os.makedirs(mig)
    for i in range(1, N + 1):
        with open(os.path.join(mig, f"{i:04d}_t_{i}.sql"), "w") as f:
            f.write(f"CREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n-- @UNDO\nDROP TABLE t_{i};\n")
    ledger = ("CREATE TABLE _migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
              "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), checksum TEXT, duration_ms BIGINT, "
              "applied_by TEXT, fence BIGINT, status TEXT NOT NULL DEFAULT 'applied', statements_done BIGINT NOT NULL DEFAULT 0);\n")
    floor_up = ledger + "".join(
        f"BEGIN;\nCREATE TABLE t_{i} (id INT PRIMARY KEY, v TEXT);\n"
        f"INSERT INTO _migrations (version, description, checksum) VALUES ({i}, 't {i}', '{'0' * 64}');\nCOMMIT;\n"
        for i in range(1, N + 1))
    floor_noop = "SELECT version, description, applied_at, checksum, status FROM _migrations ORDER BY 1;\n"
    floor_down = "".join(
        f"BEGIN;\nDROP TABLE t_{i};\nDELETE FROM _migrations WHERE version = {i};\nCOMMIT;\n"
        for i in range(N, 0, -1))
    env = dict(os.environ, MIGRATIONS_DIR=mig, LOG_LEVEL="warn", MIGRATE_TERMINATION_LOG="/dev/null")

    def ours(db_url, *args):
        e = dict(env, DATABASE_URL=db_url)
        sh([BIN, *args], env=e)

    samples = {k: [] for k in ["floor_up", "ours_up", "floor_noop", "ours_noop", "floor_down", "ours_down"]}
    for r in range(ROUNDS):
        for who in ("floor", "ours"):
            psql(with_db(url, "postgres"), f"CREATE DATABASE bench_{who}_{r};")
        f_url, o_url = with_db(url, f"bench_floor_{r}"), with_db(url, f"bench_ours_{r}")
        samples["floor_up"].append(timed(lambda: psql(f_url, floor_up)))
        samples["ours_up"].append(timed(lambda: ours(o_url, "migrate")))
        samples["floor_noop"].append(timed(lambda: psql(f_url, floor_noop)))
        samples["ours_noop"].append(timed(lambda: ours(o_url, "migrate")))
        samples["floor_down"].append(timed(lambda: psql(f_url, floor_down)))
        samples["ours_down"].append(timed(lambda: ours(o_url, "rollback", "--target", "0")))
        print(f"round {r + 1}/{ROUNDS}: " + ", ".join(f"{k}={v[-1] * 1000:.0f}ms" for k, v in samples.items()), flush=True)

    # Peak RSS of a full apply, on a fresh database.
    psql(with_db(url, "postgres"), "CREATE DATABASE bench_rss;")
    e = dict(env, DATABASE_URL=with_db(url, "bench_rss"))
    res = subprocess.run(["/usr/bin/time", "-v", BIN, "migrate"], env=e, capture_output=True, text=True, check=True)
    rss_kib = int(next(l for l in res.stderr.splitlines() if "Maximum resident set size" in l).split(":")[1])
    res = subprocess.run(["/usr/bin/time", "-v", BIN, "migrate"], env=e, capture_output=True, text=True, check=True)
    rss_noop_kib = int(next(l for l in res.stderr.splitlines() if "Maximum resident set size" in l).split(":")[1])
    size = os.path.getsize(BIN)

    med = {k: statistics.median(v) for k, v in samples.items()}
    rows = [
        ("apply all", med["ours_up"] / med["floor_up"], 1.05),
        ("no-op re-run", med["ours_noop"] / med["floor_noop"], 1.0),
        ("rollback all", med["ours_down"] / med["floor_down"], None),
    ]
    print(f"\ncrdb-migrate vs psql floor, N={N}, {ROUNDS} interleaved rounds (medians)")
    for name, ratio, target in rows:
        verdict = "" if target is None else ("  target <= %.2fx: %s" % (target, "met" if ratio <= target else "MISSED"))
        print(f"  {name:<14} {ratio:5.2f}x{verdict}")
    for k in ("up", "noop", "down"):
        print(f"  {k:<5} ours {med['ours_' + k] * 1000:7.1f} ms   floor {med['floor_' + k] * 1000:7.1f} ms")
    print(f"  peak RSS apply {rss_kib / 1024:.1f} MiB, no-op {rss_noop_kib / 1024:.1f} MiB  target <= 6 MiB: {'met' if max(rss_kib, rss_noop_kib) <= 6 * 1024 else 'MISSED'}")
    print(f"  stripped release binary {size / 1048576:.2f} MiB  target <= 6 MiB: {'met' if size <= 6 * 1048576 else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Developer tool: an independent reference for `crdb-migrate test`, built on pg_dump.

Not a test dependency. For each migration of a directory in our format
(`<version>_<desc>.sql`, forward SQL, then optionally a `-- @UNDO` line and the undo SQL), on a
scratch PostgreSQL database:

    pg_dump --schema-only    (before)
    apply the forward SQL    (psql, one transaction unless `-- @NO_TRANSACTION`)
    copy the database        (CREATE DATABASE ... TEMPLATE, through the `postgres` database)
    apply the undo SQL to the copy, pg_dump --schema-only it (after), drop it
    compare, and go on from the database, still exactly in its forward state

The undo runs on a copy so that the database keeps the forward state exactly, data included,
as `test` keeps it by rolling its undo back: applying the forward SQL again after the undo
would run a data change twice (rows inserted by a forward SQL whose undo leaves them, then a
later unique index that cannot be built) and fail later migrations that are fine. A
migration creating, altering or dropping roles or tablespaces (shared by every database of the
server, so by the copy too) has its undo run on the database itself instead, then its forward
SQL applied again; when that fails, the database is dropped, re-created and every forward SQL
so far replayed.

The two dumps are compared after normalising what our canonical schema deliberately ignores:
comment and SET lines and psql meta-commands of the dump, whitespace (inside function bodies
and elsewhere), the order of the columns inside a table, the order of the statements, and our
own ledger and lease tables. Everything else pg_dump writes counts, owners included.
The verdicts use the vocabulary of `crdb-migrate test --json`: ok, irreversible, undo_failed,
not_restored, forward_failed, not_run.

Usage: undo_reference.py DIR DATABASE_URL [--table _migrations] [--bindir DIR]
The database must be empty and scratch, with no other session on it (a template database
cannot be copied while one is), and the role may create databases. Prints JSON on stdout.
Python 3 stdlib only; needs psql and pg_dump (default /usr/lib/postgresql/15/bin).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

NAME = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")


def load(directory):
    """The migrations of DIR in version order: (version, file, up, undo or None, no_tx, undo_line)."""
    out = []
    for f in os.listdir(directory):
        m = NAME.match(f)
        if not m:
            continue
        lines = open(os.path.join(directory, f), encoding="utf-8").read().split("\n")
        marker = next((i for i, l in enumerate(lines) if l.strip() == "-- @UNDO"), None)
        up = lines if marker is None else lines[:marker]
        undo = None if marker is None else "\n".join(lines[marker + 1:])
        no_tx = False
        for line in (l.strip() for l in up if l.strip()):
            if not line.startswith("--"):
                break
            no_tx = no_tx or line == "-- @NO_TRANSACTION"
        out.append((int(m.group(1)), f, "\n".join(up), undo, no_tx, (marker or 0) + 1))
    return sorted(out)


class Db:
    def __init__(self, url, bindir, table):
        self.url, self.bindir, self.table = url, bindir, table

    def run_sql(self, sql, transactional):
        """Runs SQL through psql; None on success, else (line in the text, message)."""
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(sql + "\n")
        args = [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-d", self.url, "-f", f.name]
        if transactional:
            args.insert(1, "--single-transaction")
        p = subprocess.run(args, capture_output=True, text=True)
        os.unlink(f.name)
        if p.returncode == 0:
            return None
        m = re.search(r":(\d+): ERROR:\s*(.*)", p.stderr)
        return (int(m.group(1)), m.group(2).strip()) if m else (0, p.stderr.strip())

    def admin(self, sql):
        """Runs one statement in the `postgres` database of the same server; True on success."""
        url = urllib.parse.urlsplit(self.url)
        admin = urllib.parse.urlunsplit(url._replace(path="/postgres"))
        p = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-d", admin, "-c", sql], capture_output=True)
        return p.returncode == 0

    def copy(self):
        """A copy of the database (CREATE DATABASE ... TEMPLATE), as a Db; None if it failed."""
        url = urllib.parse.urlsplit(self.url)
        name = url.path.lstrip("/")
        copy = name + "_undo_copy"
        self.admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        if not self.admin(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'):
            return None
        return Db(urllib.parse.urlunsplit(url._replace(path="/" + copy)), self.bindir, self.table)

    def rebuild(self, ups):
        """Drops and re-creates the database, then replays the forward SQL of `ups`."""
        name = urllib.parse.urlsplit(self.url).path.lstrip("/")
        if not (self.admin(f'DROP DATABASE "{name}" WITH (FORCE)')
                and self.admin(f'CREATE DATABASE "{name}"')):
            return False
        return all(self.run_sql(up, not no_tx) is None for up, no_tx in ups)

    def drop(self):
        name = urllib.parse.urlsplit(self.url).path.lstrip("/")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def dump(self):
        args = [os.path.join(self.bindir, "pg_dump"), "--schema-only",
                "-T", self.table, "-T", self.table + "_lease", "-d", self.url]
        p = subprocess.run(args, capture_output=True, text=True, check=True)
        return normalise(p.stdout)


def statements(text):
    """Splits SQL at top-level semicolons, minding quotes, dollar quotes and comments."""
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'\"":
            j = i + 1
            while j < n and not (text[j] == c and not text.startswith(c * 2, j)):
                j += 2 if text.startswith(c * 2, j) else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        m = re.match(r"\$[A-Za-z_0-9]*\$", text[i:]) if c == "$" else None
        if m:
            j = text.find(m.group(0), i + len(m.group(0)))
            j = n if j < 0 else j + len(m.group(0))
            cur.append(text[i:j])
            i = j
            continue
        if c == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return [" ".join(s.split()) for s in out if s.strip()]


def top_level_items(body):
    """Splits a parenthesised list at top-level commas (not inside parentheses or quotes)."""
    items, depth, cur, quote = [], 0, "", None
    for c in body:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
            continue
        else:
            depth += c == "("
            depth -= c == ")"
        cur += c
    return items + [cur.strip()]


def closing_paren(text, start):
    """The index of the parenthesis closing the one at `start`, minding quotes; None if none."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def normalise(dump):
    """The dump as a sorted list of statements: no comments, psql meta-commands, SET lines or
    set_config calls, whitespace collapsed, and the column list of each CREATE TABLE (foreign
    tables included) sorted."""
    # pg_dump from 15.14 on brackets its output with `\restrict KEY` / `\unrestrict KEY`
    # psql meta-commands whose key is random on every run.
    dump = "\n".join(l for l in dump.split("\n") if not l.startswith("\\"))
    out = []
    for s in statements(dump):
        if s.startswith("SET ") or s.startswith("SELECT pg_catalog.set_config("):
            continue
        # The column list only: a table's `WITH (...)`, `PARTITION BY (...)` or a foreign
        # table's `SERVER ... OPTIONS (...)` after it stay where they are.
        m = re.match(r"^CREATE (?:UNLOGGED |FOREIGN )?TABLE \S+ \(", s)
        end = closing_paren(s, m.end() - 1) if m else None
        if end is not None:
            s = s[:m.end()] + ", ".join(sorted(top_level_items(s[m.end():end]))) + s[end:]
        out.append(s)
    return sorted(out)


def differences(before, after):
    b, a = set(before), set(after)
    return ["removed: " + s for s in before if s not in a] + \
           ["added: " + s for s in after if s not in b]


# Roles, users and tablespaces belong to the server, not to a database: a copy shares them, so
# an undo dropping a role the database still grants to could not run on the copy, and one
# dropping a role the forward SQL created would drop it for the database too.
SERVER_WIDE = re.compile(r"\b(?:(?:CREATE|DROP|ALTER)\s+(?:ROLE|USER|GROUP|TABLESPACE)"
                         r"|(?:DROP|REASSIGN)\s+OWNED)\b", re.IGNORECASE)


def check(db, done, up, undo, no_tx, undo_line):
    """One migration's verdict, and whether the run stops; leaves the database in its forward
    state unless the run stops (`done` holds the earlier forward SQL, to rebuild it)."""
    before = db.dump()
    failed = db.run_sql(up, not no_tx)
    if failed:
        return {"verdict": "forward_failed", "line": failed[0], "error": failed[1]}, True
    if undo is None:
        return {"verdict": "irreversible"}, False
    on_copy = not SERVER_WIDE.search(up + "\n" + undo)
    forward = None if on_copy else db.dump()
    target = db.copy() if on_copy else db
    if target is None:
        sys.exit("could not copy the database: is another session connected to it?")
    try:
        failed = target.run_sql(undo, not no_tx)
        if failed:
            # `test` runs a non-transactional undo on the database itself and stops after
            # one that fails (the state is unknown); so does this reference.
            verdict = {"verdict": "undo_failed", "line": failed[0] + undo_line,
                       "error": failed[1]}
            return verdict, no_tx
        diff = differences(before, target.dump())
    finally:
        if on_copy:
            target.drop()
    verdict = {"verdict": "not_restored", "differences": diff} if diff else {"verdict": "ok"}
    # The undo ran on the database itself: back to the forward state. A forward SQL that
    # cannot run again because the undo left its role behind is in that state already.
    if on_copy or not db.run_sql(up, not no_tx) or db.dump() == forward:
        return verdict, False
    return verdict, not db.rebuild(done + [(up, no_tx)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("url")
    ap.add_argument("--table", default="_migrations")
    ap.add_argument("--bindir", default="/usr/lib/postgresql/15/bin")
    args = ap.parse_args()
    db = Db(args.url, args.bindir, args.table)
    started, results, stopped, done = time.time(), [], False, []
    for version, file, up, undo, no_tx, undo_line in load(args.dir):
        t = time.time()
        if stopped:
            verdict = {"verdict": "not_run"}
        else:
            verdict, stopped = check(db, done, up, undo, no_tx, undo_line)
            done.append((up, no_tx))
        results.append(dict(version=version, file=file, transactional=not no_tx,
                            duration_ms=int((time.time() - t) * 1000), **verdict))
    failing = ("undo_failed", "not_restored", "forward_failed")
    json.dump({"migrations": results,
               "failed": sum(r["verdict"] in failing for r in results),
               "irreversible": sum(r["verdict"] == "irreversible" for r in results),
               "duration_ms": int((time.time() - started) * 1000)}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

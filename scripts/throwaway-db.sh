#!/usr/bin/env bash
# Starts a throwaway database server on a free loopback port and prints its URL on stdout:
# CockroachDB (`cockroach start-single-node --insecure`) when `cockroach` is on PATH, else
# PostgreSQL from the machine's binaries (run as the `postgres` user when we are root).
# Usage: eval "$(scripts/throwaway-db.sh start DIR)"  -> sets DATABASE_URL, THROWAWAY_STOP
#        scripts/throwaway-db.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
pick_port() { local p; for _ in $(seq 50); do p=$(( (RANDOM % 20000) + 30000 )); port_free "$p" && { echo "$p"; return; }; done; echo 54329; }
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
case $cmd in
start)
  mkdir -p "$dir"; port=$(pick_port)
  if command -v cockroach >/dev/null; then
    cockroach start-single-node --insecure --listen-addr=127.0.0.1:"$port" --http-addr=127.0.0.1:0 \
      --store="$dir/crdb" --background --pid-file="$dir/pid" >"$dir/log" 2>&1
    echo "export DATABASE_URL='postgresql://root@127.0.0.1:$port/defaultdb?sslmode=disable'"
  else
    bindir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust >"$dir/log" 2>&1
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >>"$dir/log" 2>&1
    echo "export DATABASE_URL='postgresql://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
  fi ;;
stop)
  if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true
  elif [ -d "$dir/data" ]; then
    bindir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$bindir/pg_ctl" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir" ;;
esac

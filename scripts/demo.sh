#!/usr/bin/env bash
# `make demo`: builds crdb-migrate, starts a throwaway local database unless DATABASE_URL is
# set, applies ./migrations, prints `status`, and stops the throwaway database.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
bin=target/debug/crdb-migrate
if [ -z "${DATABASE_URL:-}" ]; then
  dir=$(mktemp -d /tmp/crdb-migrate-demo.XXXXXX)
  trap 'scripts/throwaway-db.sh stop "$dir"' EXIT
  eval "$(scripts/throwaway-db.sh start "$dir")"
  echo "throwaway database: $DATABASE_URL"
fi
export DATABASE_URL MIGRATIONS_DIR=${MIGRATIONS_DIR:-./migrations} LOG_FORMAT=${LOG_FORMAT:-text}
"$bin" migrate
"$bin" status

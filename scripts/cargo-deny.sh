#!/usr/bin/env bash
# Runs `cargo deny "$@"` in the repository with cargo-deny at a pinned version, installed once
# from crates.io (`cargo install --locked`) into a cache outside the clone, so a fresh clone on
# the same machine reuses it. Used by .ci/run (offline checks) and the advisories workflow.
#   CARGO_DENY_CACHE  where the binary goes (default ~/.cache/crdb-migrate/cargo-deny-<version>)
#
# The install is an unoptimised build (`--debug`, no debug info): half the CPU time of
# cargo-deny's own release profile (fat LTO, one codegen unit) on a 2-core machine, while its
# checks of this tree still take about a second (docs/releasing.md has the figures). Same
# version, same Cargo.lock, from crates.io: only the optimisation level differs.
set -euo pipefail

CARGO_DENY_VERSION=0.20.2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CARGO_DENY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crdb-migrate/cargo-deny-$CARGO_DENY_VERSION}"
bin="$cache/bin/cargo-deny"

if [[ ! -x "$bin" ]] || [[ "$("$bin" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
  start=$(date +%s)
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' EXIT
  echo "cargo-deny: installing $CARGO_DENY_VERSION into $cache (once per machine)" >&2
  CARGO_PROFILE_DEV_DEBUG=false CARGO_TARGET_DIR="$build" \
    cargo install --debug --locked --quiet --force --version "$CARGO_DENY_VERSION" --root "$cache" cargo-deny
  rm -rf "$build"
  echo "cargo-deny: installed in $(($(date +%s) - start))s" >&2
fi

cd "$ROOT"
exec "$bin" "$@"

#!/usr/bin/env bash
# What can be checked here of a release (.github/workflows/release.yml), run by
# `make deploy-check` after scripts/deploy-check.sh (whose tools in .cache/tools it reuses):
#   1. scripts/release-version.sh accepts a tag equal to Cargo.toml's version, the chart's
#      version and appVersion with a CHANGELOG.md section, and refuses each mismatch;
#   2. scripts/release-notes.sh prints that section;
#   3. the chart renders with the published image reference: by default
#      ghcr.io/example/crdb-migrate:<appVersion>, and, prepared by scripts/release-chart.sh as
#      the workflow does, ghcr.io/<owner>/crdb-migrate:<appVersion> in every migrator container.
# Rendering uses `helm template` when helm is on PATH, else the Helm SDK wheel deploy-check
# installed (helm-python-sdk).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${DEPLOY_CHECK_TOOLS:-$ROOT/.cache/tools}"
PY="$TOOLS/venv/bin/python"
CHART="$ROOT/deploy/helm/crdb-migrate"
# Every hook Job and the example Deployment (whose init container runs the migrator image).
VALUES="contractJob.enabled=true,rollbackHook.enabled=true,exampleApp.enabled=true,targetVersion=20240101000000"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failures=0
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
printf '\n== release: version checks, release notes, the chart with the published image\n'

# ---- 1. the version check, on a copy of the three files it reads
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)"
fake_tree() { # $1 dir, $2 version in Cargo.toml, $3 chart version, $4 appVersion, $5 changelog section
  mkdir -p "$1/deploy/helm/crdb-migrate"
  sed "0,/^version = \".*\"$/s//version = \"$2\"/" "$ROOT/Cargo.toml" >"$1/Cargo.toml"
  sed -e "s/^version: .*/version: $3/" -e "s/^appVersion: .*/appVersion: \"$4\"/" \
    "$CHART/Chart.yaml" >"$1/deploy/helm/crdb-migrate/Chart.yaml"
  printf '# Changelog\n\n## [Unreleased]\n\n## [%s] - 2026-01-01\n\n### Fixed\n\n- Something.\n' "$5" >"$1/CHANGELOG.md"
}
expect_version() { # $1 label, $2 tag, $3 expected stdout ("" = must fail), $4 tree
  local out
  if out="$(RELEASE_ROOT="$4" bash "$ROOT/scripts/release-version.sh" "$2" 2>"$work/err")"; then
    if [[ -n "$3" && "$out" == "$3" ]]; then ok "release-version: $1"; else fail "release-version: $1: printed '$out'"; fi
  elif [[ -z "$3" ]]; then
    ok "release-version: $1 ($(tail -1 "$work/err" | sed 's/^ *//'))"
  else
    fail "release-version: $1: $(cat "$work/err")"
  fi
}
fake_tree "$work/good" "$version" "$version" "$version" "$version"
minor="$(cut -d. -f1,2 <<<"$version")"
expect_version "v$version accepted" "v$version" "$(printf 'version=%s\nminor=%s' "$version" "$minor")" "$work/good"
expect_version "a tag that is not the version refused" "v$version.1" "" "$work/good"
expect_version "a tag without v refused" "$version" "" "$work/good"
fake_tree "$work/rc" "$version-rc.1" "$version-rc.1" "$version-rc.1" "$version-rc.1"
expect_version "a pre-release moves no minor tag" "v$version-rc.1" "$(printf 'version=%s-rc.1\nminor=' "$version")" "$work/rc"
fake_tree "$work/chart" "$version" "9.9.9" "$version" "$version"
expect_version "chart version mismatch refused" "v$version" "" "$work/chart"
fake_tree "$work/app" "$version" "$version" "9.9.9" "$version"
expect_version "appVersion mismatch refused" "v$version" "" "$work/app"
fake_tree "$work/cargo" "9.9.9" "$version" "$version" "$version"
expect_version "Cargo.toml mismatch refused" "v$version" "" "$work/cargo"
fake_tree "$work/log" "$version" "$version" "$version" "9.9.9"
expect_version "missing CHANGELOG.md section refused" "v$version" "" "$work/log"

# ---- 2. the release notes
if notes="$(RELEASE_ROOT="$work/good" bash "$ROOT/scripts/release-notes.sh" "$version")" \
  && [[ "$notes" == $'### Fixed\n\n- Something.' ]]; then
  ok "release-notes: the version's section"
else
  fail "release-notes: printed '${notes:-}'"
fi

# ---- 3. the chart with the published image
render() { # $1 chart dir: the rendered manifests on stdout
  if command -v helm >/dev/null 2>&1; then
    helm template crdb-migrate "$1" --set "$VALUES"
  else
    "$PY" - "$1" "$VALUES" <<'PY'
import sys
import helm_python as helm

with helm.Chart.load(sys.argv[1]) as chart:
    manifests = chart.render(helm.parse_set_string(sys.argv[2]), name="crdb-migrate",
                             namespace="default", is_install=True)
print("\n---\n".join(text for _, text in sorted(manifests.items()) if text.strip()))
PY
  fi
}
check_images() { # $1 label, $2 chart dir, $3 expected migrator image reference
  if ! render "$2" >"$work/rendered.yaml" 2>"$work/err"; then
    fail "chart ($1): render failed: $(cat "$work/err")"
    return
  fi
  if "$PY" - "$work/rendered.yaml" "$3" "$2/values.yaml" <<'PY'; then ok "chart ($1): every migrator container runs $3"; else fail "chart ($1)"; fi
import sys
import yaml

rendered, want, values_file = sys.argv[1:4]
with open(values_file) as f:
    app = yaml.safe_load(f)["exampleApp"]["image"]
app_image = f"{app['repository']}:{app['tag']}"
images = []
for doc in yaml.safe_load_all(open(rendered)):
    if not doc or doc.get("kind") not in ("Job", "Deployment"):
        continue
    pod = doc["spec"]["template"]["spec"]
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        images.append((f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}", c["image"]))
migrator = [(where, image) for where, image in images if image != app_image]
wrong = [f"{where}: {image}" for where, image in migrator if image != want]
# Three hook Jobs and the example app's init container.
if len(migrator) < 4 or wrong:
    print(f"FAIL: expected {want} in every migrator container, found {migrator}")
    sys.exit(1)
PY
}
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")"
if ! command -v helm >/dev/null 2>&1 && ! "$PY" -c 'import helm_python' 2>/dev/null; then
  fail "chart: neither helm nor helm-python-sdk (run scripts/deploy-check.sh first)"
else
  check_images "defaults" "$CHART" "ghcr.io/example/crdb-migrate:$app_version"
  if prepared="$(bash "$ROOT/scripts/release-chart.sh" ghcr.io/acme-corp/crdb-migrate "$work/release")"; then
    check_images "as released by owner acme-corp" "$prepared" "ghcr.io/acme-corp/crdb-migrate:$app_version"
  else
    fail "release-chart.sh"
  fi
  if bash "$ROOT/scripts/release-chart.sh" ghcr.io/Acme-Corp/crdb-migrate "$work/upper" >/dev/null 2>&1; then
    fail "release-chart.sh accepted an upper-case repository"
  else
    ok "release-chart.sh refuses an upper-case repository"
  fi
fi

printf 'release-check: %d failure(s)\n' "$failures"
((failures == 0))

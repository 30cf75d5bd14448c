#!/usr/bin/env bash
# Checks that a release tag names the version the tree says it is, and prints what the release
# workflow needs as `key=value` lines (for $GITHUB_OUTPUT):
#   version=1.4.2       the tag without its `v`
#   minor=1.4           the moving minor image tag; empty for a pre-release (1.5.0-rc.1)
# Fails, naming every mismatch, unless all of these hold:
#   - the tag is v<semver> (vMAJOR.MINOR.PATCH, optionally -PRERELEASE);
#   - Cargo.toml's package version, the chart's `version` and its `appVersion` equal it;
#   - CHANGELOG.md has a `## [<version>]` section (docs/releasing.md).
# Usage: scripts/release-version.sh v1.4.2
set -euo pipefail

ROOT="${RELEASE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" # RELEASE_ROOT: tests only
CHART_YAML="$ROOT/deploy/helm/crdb-migrate/Chart.yaml"
tag="${1:?usage: $0 vMAJOR.MINOR.PATCH}"

semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
if [[ ! "$tag" =~ $semver ]]; then
  echo "release-version: tag '$tag' is not vMAJOR.MINOR.PATCH[-PRERELEASE]" >&2
  exit 1
fi
version="${tag#v}"
minor="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
[[ -n "${BASH_REMATCH[4]}" ]] && minor=""

# The `version = "..."` line of the [package] table (dependency tables also say `version`).
cargo_version="$(awk '
  /^\[/ { in_package = ($0 == "[package]") }
  in_package && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*$/, ""); print; exit }
' "$ROOT/Cargo.toml")"
chart_field() { # the value of a top-level key of Chart.yaml, quotes removed
  sed -n "s/^$1:[[:space:]]*[\"']\{0,1\}\([^\"'[:space:]]*\)[\"']\{0,1\}[[:space:]]*\$/\1/p" "$CHART_YAML" | head -1
}
chart_version="$(chart_field version)"
app_version="$(chart_field appVersion)"

errors=()
[[ "$cargo_version" == "$version" ]] || errors+=("Cargo.toml version is '$cargo_version'")
[[ "$chart_version" == "$version" ]] || errors+=("Chart.yaml version is '$chart_version'")
[[ "$app_version" == "$version" ]] || errors+=("Chart.yaml appVersion is '$app_version'")
grep -q -F "## [$version]" <(grep '^## \[' "$ROOT/CHANGELOG.md") \
  || errors+=("CHANGELOG.md has no '## [$version]' section")
if ((${#errors[@]})); then
  printf 'release-version: tag %s does not match the tree:\n' "$tag" >&2
  printf '  - %s\n' "${errors[@]}" >&2
  exit 1
fi
printf 'version=%s\nminor=%s\n' "$version" "$minor"

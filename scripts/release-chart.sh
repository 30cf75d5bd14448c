#!/usr/bin/env bash
# Prepares the Helm chart as a release publishes it: a copy of deploy/helm/crdb-migrate in
# OUT_DIR whose default image is IMAGE (the repository the release workflow pushed to,
# e.g. ghcr.io/acme/crdb-migrate) instead of the placeholder ghcr.io/example/crdb-migrate.
# The image tag stays empty, so it defaults to the chart's appVersion: the version the release
# checked (scripts/release-version.sh). Prints the prepared chart's directory.
# Used by .github/workflows/release.yml before `helm package`, and by scripts/release-check.sh,
# which renders the result.
# Usage: scripts/release-chart.sh ghcr.io/OWNER/crdb-migrate OUT_DIR
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLACEHOLDER="ghcr.io/example/crdb-migrate"
image="${1:?usage: $0 IMAGE OUT_DIR}"
out="${2:?usage: $0 IMAGE OUT_DIR}"

# A registry reference is lower case (ghcr.io rejects GitHub owners' capitals).
if [[ ! "$image" =~ ^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+$ ]]; then
  echo "release-chart: '$image' is not a lower-case image repository (no tag)" >&2
  exit 1
fi

mkdir -p "$out"
rm -rf "${out:?}/crdb-migrate"
cp -R "$ROOT/deploy/helm/crdb-migrate" "$out/crdb-migrate"
values="$out/crdb-migrate/values.yaml"
# Exactly one line sets the image repository to the placeholder: the migrator's image.
want="  repository: $PLACEHOLDER"
if [[ "$(grep -c -x -F "$want" "$values")" != 1 ]]; then
  echo "release-chart: values.yaml must hold the line '$want' exactly once" >&2
  exit 1
fi
sed -i "s|^  repository: ${PLACEHOLDER//./\\.}\$|  repository: $image|" "$values"
grep -q -x -F "  repository: $image" "$values"
echo "$out/crdb-migrate"

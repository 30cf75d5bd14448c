#!/usr/bin/env bash
# Prints the body of CHANGELOG.md's `## [VERSION]` section (up to the next `## ` heading), the
# text of a GitHub release. Fails when the section is missing or empty.
# Usage: scripts/release-notes.sh 1.4.2
set -euo pipefail

ROOT="${RELEASE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" # RELEASE_ROOT: tests only
version="${1:?usage: $0 VERSION}"
notes="$(awk -v heading="## [$version]" '
  index($0, "## ") == 1 { if (found) exit; found = (index($0, heading) == 1); next }
  found { print }
' "$ROOT/CHANGELOG.md" | sed -e '/./,$!d')"
if [[ -z "${notes//[[:space:]]/}" ]]; then
  echo "release-notes: CHANGELOG.md has no text under '## [$version]'" >&2
  exit 1
fi
printf '%s\n' "$notes"

#!/usr/bin/env bash
# Fetch the console's map assets again from the npm registry (npm pack: no install, no scripts run) and check
# them against src/launchrelay/console/static/vendor/VENDOR.md. Run after changing a version there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$here/src/launchrelay/console/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent d3-array@3.2.5 d3-geo@3.1.2 topojson-client@3.1.0 world-atlas@2.0.2 >/dev/null
for pkg in d3-array-3.2.5 d3-geo-3.1.2 topojson-client-3.1.0 world-atlas-2.0.2; do
  mkdir "$pkg" && tar xzf "$pkg.tgz" -C "$pkg"
  cp "$pkg/package/LICENSE" "$vendor/LICENSE.${pkg%-*.*.*}"
done
cp d3-array-3.2.5/package/dist/d3-array.min.js d3-geo-3.1.2/package/dist/d3-geo.min.js \
   topojson-client-3.1.0/package/dist/topojson-client.min.js world-atlas-2.0.2/package/land-50m.json "$vendor/"
cd "$vendor"
grep -E '^\| [a-z0-9.-]+\.(js|json) ' VENDOR.md | awk -F'|' '{gsub(/ /, "", $2); gsub(/ /, "", $5); print $5 "  " $2}' \
  | sha256sum --check

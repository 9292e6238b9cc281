#!/usr/bin/env bash
# Runs the test suite on Node 22 and 24 besides the machine's own Node (20): users run all three.
# The Node binaries come from the npm registry (package `node`), into a temporary folder.
# Usage: bash scripts/test-node-matrix.sh [22 24]   (expects `npm ci` done)
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ $# -eq 0 ] && versions=(22 24)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# What `npm test` builds first (its pretest): the code and the dashboard's bundle, which the
# browser tests load.
npm run build >/dev/null
for version in "${versions[@]}"; do
  prefix="$work/node$version"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save "node@$version" >/dev/null 2>&1
  bin="$(dirname "$(find "$prefix" -path '*node-linux-*/bin/node' -type f | head -n 1)")"
  if [ ! -x "$bin/node" ]; then
    echo "node $version: no binary for this platform from the registry" >&2
    exit 1
  fi
  echo "== tests on node $(PATH="$bin:$PATH" node --version)"
  PATH="$bin:$PATH" node node_modules/vitest/vitest.mjs run --reporter=dot
done

#!/usr/bin/env bash
# The release tarball of the npm package, in dist/ (what `npm publish` would upload).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
mkdir -p dist
tarball=$(npm pack ./pkg --pack-destination dist --silent)
echo "dist/$tarball — install it with: npm install $(pwd)/dist/$tarball"

#!/usr/bin/env bash
# The npm package against the Autopay emulator (examples/node-demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
node examples/node-demo.mjs

#!/usr/bin/env bash
# The main job: build what is needed, start the Autopay emulator, and show tokens minted once
# and then served from cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
node scripts/build.mjs
node examples/node-demo.mjs

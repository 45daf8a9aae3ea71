#!/usr/bin/env bash
# The main job: the Worker locally (wrangler dev) against the Autopay emulator, with local KV and
# Durable Objects; shows tokens minted once and then served from cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
bash scripts/build-worker.sh
# wrangler's own [build] step then finds nothing to rebuild
exec node scripts/demo-worker.mjs "$@"

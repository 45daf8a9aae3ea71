#!/usr/bin/env bash
# Benchmarks (figures, not tests): builds what is needed, then prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
bash scripts/build-worker.sh
node bench/hot-path.mjs
node bench/peers.mjs
node bench/worker.mjs

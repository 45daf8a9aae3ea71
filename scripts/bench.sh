#!/usr/bin/env bash
# Benchmarks (figures, not tests): builds what is needed, runs each benchmark (they print their
# tables and write bench/results/*.json), then writes BENCHMARKS.md and bench/charts/*.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
node scripts/build.mjs
bash scripts/build-worker.sh worker front
node bench/hot-path.mjs
node bench/peers.mjs
node bench/worker.mjs
node bench/dpop.mjs
node bench/isolate-start.mjs
cargo bench --bench fleet
node bench/report.mjs

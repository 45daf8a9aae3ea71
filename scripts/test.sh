#!/usr/bin/env bash
# Every test: the core natively, the npm edge as wasm in Node, the packed package against the
# Autopay emulator, and the Worker in workerd (Miniflare). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== core (native cargo test)"
cargo test --all-targets

echo "== npm edge (wasm-bindgen-test in Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target wasm32-unknown-unknown --features npm --test wasm_edge

echo "== build: npm package (pkg/) and Worker (build/)"
node scripts/build.mjs
bash scripts/build-worker.sh

echo "== npm package (packed, installed, driven against the emulator), every runtime, and the Worker (workerd)"
AUTOPAY_TEST_PROJECT=$(node scripts/pack-consumer.mjs)
export AUTOPAY_TEST_PROJECT
node --test --test-reporter=spec tests/js/ tests/runtimes/ tests/types/ tests/worker/

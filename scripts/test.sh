#!/usr/bin/env bash
# Every test: the core natively, the npm edge as wasm in Node, then the packed package
# against the Autopay emulator. Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== core (native cargo test)"
cargo test --all-targets

echo "== npm edge (wasm-bindgen-test in Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target wasm32-unknown-unknown --features npm --test wasm_edge

echo "== npm package (built, packed, installed, driven against the emulator)"
node scripts/build.mjs
AUTOPAY_TEST_PROJECT=$(node scripts/pack-consumer.mjs)
export AUTOPAY_TEST_PROJECT
node --test --test-reporter=spec tests/js/

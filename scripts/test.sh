#!/usr/bin/env bash
# Every test: the core natively, the npm edge as wasm in Node, the packed package against the
# Autopay emulator, and the Worker in workerd (Miniflare). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test.sh
source scripts/env.sh

echo "== style and lints: cargo fmt --check, cargo clippy -D warnings (native, the npm edge, the Worker)"
cargo fmt --check
cargo clippy --all-targets --features native -- -D warnings
cargo clippy --all-targets --target wasm32-unknown-unknown --features npm -- -D warnings
cargo clippy --target wasm32-unknown-unknown --features worker --target-dir target/worker-check -- -D warnings
# the front of a split deployment alone (deploy/split)
cargo clippy --target wasm32-unknown-unknown --features worker-front --target-dir target/worker-check -- -D warnings

echo "== core and the native client (cargo test, feature native: against the emulator and redis-server)"
# the examples as users run them (the native example and the mixed fleet's Rust instance)
cargo build --features native --examples
cargo test --all-targets --features native

echo "== the crate as published: cargo package (the files it ships, built alone) and its docs (feature native)"
cargo package --quiet --allow-dirty
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --features native

echo "== npm edge (wasm-bindgen-test in Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target wasm32-unknown-unknown --features npm --test wasm_edge

echo "== build: npm package (pkg/) and Worker (build/, and build-front/ for a split deployment)"
node scripts/build.mjs
bash scripts/build-worker.sh worker front

echo "== Node $(node --version): the npm package (packed, installed, driven against the emulator), every runtime, the Worker (workerd)"
AUTOPAY_TEST_PROJECT=$(node scripts/pack-consumer.mjs)
export AUTOPAY_TEST_PROJECT
node --test --test-reporter=spec tests/js/*.test.mjs tests/runtimes/*.test.mjs tests/types/*.test.mjs tests/worker/*.test.mjs tests/scripts/*.test.mjs

# the package's oldest supported line, where the pinned Node 22 can run (Linux x64)
if [ -x node_modules/node22/bin/node ]; then
  echo "== Node $(node_modules/node22/bin/node --version): the npm package again"
  node_modules/node22/bin/node --test --test-reporter=spec tests/js/*.test.mjs tests/types/*.test.mjs
else
  echo "== the Node 22 pass is skipped: the pinned Node 22 is for Linux x64 only (this is $(uname -s) $(uname -m))"
fi

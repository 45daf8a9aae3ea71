#!/usr/bin/env bash
# Builds the Cloudflare Worker into build/ with worker-build, using the local tools (worker-build
# would otherwise download wasm-bindgen and wasm-opt, which fails offline). Separate target dir:
# worker-build sets WASM_BINDGEN_USE_JS_SYS, which cargo does not track.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export CARGO_TARGET_DIR="$PWD/target/worker"
worker-build --release --features worker

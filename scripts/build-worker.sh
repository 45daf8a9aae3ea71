#!/usr/bin/env bash
# Builds the Cloudflare Worker with worker-build, using the local tools (worker-build would
# otherwise download wasm-bindgen and wasm-opt, which fails offline). What it builds, as arguments
# (default `worker`: what the one Worker, the demo and a deploy need):
# - `worker`: build/, the Worker (feature `worker`: the front and the `TokenMinter` Durable Object);
# - `front`: build-front/, the front alone (feature `worker-front`), for a split deployment
#   (deploy/split), whose isolates bind the object of another Worker and compile none of the
#   minter's code.
# Separate target dir: worker-build sets WASM_BINDGEN_USE_JS_SYS, which cargo does not track.
# Incremental: nothing is rebuilt (no 10-second wasm-opt) when no input changed since the last
# build. Quiet: the tools' output goes to target/worker-build.log, shown only when a build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export CARGO_TARGET_DIR="$PWD/target/worker"
mkdir -p target

build() { # feature, out dir
  local out="$2/index_bg.wasm"
  if [ -f "$out" ] && [ -z "$(find src Cargo.toml Cargo.lock scripts/build-worker.sh -newer "$out" ! -name "*.js" -print -quit)" ]; then
    echo "build-worker: $2/ is up to date"
    return
  fi
  echo "build-worker: building $2/ (feature $1, release, wasm-opt)…"
  if ! worker-build --release --out-dir "$2" --features "$1" > target/worker-build.log 2>&1; then
    tail -n 40 target/worker-build.log >&2
    echo "build-worker: failed (full log: target/worker-build.log)" >&2
    exit 1
  fi
  # worker-build's wasm-opt keeps the function-name section (148 KB, a quarter of the file), which
  # every new isolate downloads and parses: shrink for size once more and strip it
  "$WASM_OPT_BIN" -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-reference-types \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    "$out" -o "$out.opt" >> target/worker-build.log 2>&1
  mv "$out.opt" "$out"
  touch "$out"
  echo "build-worker: $2/ ready ($(wc -c < "$out") bytes of wasm)"
}

for what in "${@:-worker}"; do
  case "$what" in
    worker) build worker build ;;
    front) build worker-front build-front ;;
    *) echo "build-worker: unknown build '$what' (worker, front)" >&2; exit 2 ;;
  esac
done

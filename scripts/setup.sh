#!/usr/bin/env bash
# Installs what building (and so the demo) needs, idempotently: each step is skipped when the
# right version is already there. Safe to run on every command. What only the tests need is in
# scripts/setup-test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
want_bindgen=$(sed -n 's/^wasm-bindgen = { version = "=\([^"]*\)".*/\1/p' Cargo.toml)
version_of() { "$@" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(version_of wasm-bindgen)" != "$want_bindgen" ]; then
  echo "setup: installing wasm-bindgen-cli $want_bindgen (about 5 minutes on 2 cores)"
  # Not --locked: its lock file pins a webpki-roots version this registry lacks.
  cargo install wasm-bindgen-cli --version "=$want_bindgen"
fi

want_worker_build=0.8.7 # pairs with the `worker` crate version in Cargo.toml
if [ "$(version_of worker-build)" != "$want_worker_build" ]; then
  echo "setup: installing worker-build $want_worker_build (about 6 minutes on 2 cores)"
  cargo install worker-build --version "=$want_worker_build" --locked
fi

# npm packages: reinstall only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.setup-lock; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.setup-lock
fi

#!/usr/bin/env bash
# Installs what building and testing need, idempotently: each step is skipped when the right
# version is already there. Safe to run on every command.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
want_bindgen=$(sed -n 's/^wasm-bindgen = { version = "=\([^"]*\)".*/\1/p' Cargo.toml)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want_bindgen" ]; then
  echo "setup: installing wasm-bindgen-cli $want_bindgen (about 5 minutes on 2 cores)"
  # Not --locked: its lock file pins a webpki-roots version this registry lacks.
  cargo install wasm-bindgen-cli --version "=$want_bindgen"
fi

# npm packages: reinstall only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.setup-lock; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.setup-lock
fi

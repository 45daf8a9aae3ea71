#!/usr/bin/env bash
# What only the tests need, beyond scripts/setup.sh: Debian's Chromium (the browser runtime
# tests), redis-server (the Redis adapter tests) and PostgreSQL's server (the Postgres store
# tests start throwaway clusters of it). Idempotent; uses sudo when not root; where
# the packages cannot be installed, says which and how.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then as_root=(sudo); fi
fi
if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ ${#as_root[@]} -eq 0 ]; }; then
  echo "setup-test: the tests need ${missing[*]}; install them (on Debian: sudo apt-get install -y ${missing[*]}) and run again" >&2
  exit 1
fi
echo "setup-test: installing ${missing[*]} from Debian"
if ! { "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "setup-test: could not install ${missing[*]}; install them (sudo apt-get install -y ${missing[*]}) and run again" >&2
  exit 1
fi

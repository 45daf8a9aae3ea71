#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 60) with cargo-fuzz on the
# nightly toolchain. A crash stops the run and leaves its input under fuzz/artifacts/; turn it
# into a regression test (tests/fuzz_regressions.rs) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds=${FUZZ_SECONDS:-60}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)"; exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz 0.13.2"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in token_answer sealed_record api_path; do
  echo "== fuzz $target (${seconds} s)"
  status=0
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|Done|SUMMARY|artifact)" "$log" || true
  if ls "fuzz/artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target"; exit 1
  fi
  # no crash is a finding only when the fuzzer ran: a build that failed, or a run that ended
  # without libFuzzer's closing "Done N runs", is a failure of this script, never "no crash"
  if [ "$status" -ne 0 ] || ! grep -qE "^Done [0-9]+ runs" "$log"; then
    echo "fuzz: $target did not run to its end (exit $status):"; tail -n 20 "$log"; exit 1
  fi
done
echo "fuzz: no crash in ${seconds} s per target"

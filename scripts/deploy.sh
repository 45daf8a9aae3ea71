#!/usr/bin/env bash
# Builds the Worker and deploys it with wrangler; the first deploy creates the KV namespace and
# writes its id into wrangler.toml. `npm run deploy -- --dry-run` checks everything without
# uploading (no Cloudflare account needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
bash scripts/build-worker.sh
export WRANGLER_SEND_METRICS=false
exec node_modules/.bin/wrangler deploy "$@"

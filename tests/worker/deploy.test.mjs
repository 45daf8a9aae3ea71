// `npm run deploy -- --dry-run` on this checkout: wrangler builds and validates the Worker with
// its wrangler.toml (bindings, Durable Object migration, compatibility date) without uploading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('npm run deploy -- --dry-run builds and validates the Worker offline', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'autopay-auth-deploy-'));
  const out = execFileSync('bash', ['scripts/deploy.sh', '--dry-run', '--outdir', outdir], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false' },
  });
  for (const binding of ['env.TOKEN_MINTER (TokenMinter)', 'env.AUTOPAY_TOKENS', 'env.AUTOPAY_TOKEN_URL', 'env.AUTOPAY_API_BASE']) {
    assert.ok(out.includes(binding), `${binding} in:\n${out}`);
  }
  assert.match(out, /--dry-run: exiting now/);
  assert.ok(existsSync(join(outdir, 'front.js')), 'the bundle (the JS front and the Rust Worker) was written');
  assert.ok(readdirSync(outdir).some((f) => f.endsWith('index_bg.wasm')), 'the wasm was bundled');
});

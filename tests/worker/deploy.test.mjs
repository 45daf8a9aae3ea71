// `npm run deploy -- --dry-run` on this checkout: wrangler builds and validates the Worker with
// its wrangler.toml (bindings, Durable Object migration, compatibility date) without uploading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
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

test('the first deploy as DEPLOY.md has it: the secrets go up with the version, hidden', () => {
  const dir = mkdtempSync(join(tmpdir(), 'autopay-auth-deploy-secrets-'));
  const secrets = join(dir, 'autopay-secrets.env');
  const values = { AUTOPAY_CLIENT_ID: 'deploy-test-client', AUTOPAY_CLIENT_SECRET: 'deploy-test-secret-5150', PROXY_API_KEYS: 'deploy-test-caller-key-0123456789' };
  writeFileSync(secrets, Object.entries(values).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  const out = execFileSync('bash', ['scripts/deploy.sh', '--dry-run', '--outdir', join(dir, 'out'), '--secrets-file', secrets], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false' },
  });
  for (const name of Object.keys(values)) assert.match(out, new RegExp(`env\\.${name} \\("\\(hidden\\)"\\)`), `${name} bound, hidden:\n${out}`);
  for (const value of Object.values(values)) assert.ok(!out.includes(value), 'no value printed');
  assert.match(out, /--dry-run: exiting now/);
});

// The benchmark's hand-written JS Worker (bench/baseline-worker.js) does the same job correctly,
// so the comparison is fair: one mint for a cold burst, caller keys checked, a KV record with
// absolute expiry that a new isolate reuses, and one re-mint and retry after an API 401.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Miniflare } from 'miniflare';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator, WORKERD_MODULES, CLIENT_ID, CLIENT_SECRET, CALLER_KEY, auth } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let emu;
before(async () => (emu = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })));
after(() => emu.close());
beforeEach(() => emu.post('/__emulator/reset'));

async function baseline(kvPersist) {
  const mf = new Miniflare({
    ...WORKERD_MODULES,
    scriptPath: join(root, 'bench', 'baseline-worker.js'),
    kvNamespaces: ['AUTOPAY_TOKENS'],
    ...(kvPersist ? { kvPersist } : {}),
    bindings: { CALLER_KEY, CLIENT_ID, CLIENT_SECRET, TOKEN_URL: emu.tokenUrl, API_BASE: `${emu.origin}/api` },
    cf: false,
  });
  await mf.ready;
  return { mf, call: (path, init) => mf.dispatchFetch(`http://baseline.test${path}`, init) };
}

test('a cold burst of 100 requests mints once; caller keys are checked', async () => {
  const w = await baseline();
  try {
    assert.equal((await w.call('/token')).status, 401);
    assert.equal((await w.call('/token', { headers: { authorization: 'Bearer wrong-key-0123456789' } })).status, 401);
    const bodies = await Promise.all(Array.from({ length: 100 }, () => w.call('/token', { headers: auth() }).then((r) => r.json())));
    assert.equal(new Set(bodies.map((b) => b.access_token)).size, 1);
    assert.ok(bodies[0].expires_in > 86_000);
    assert.equal(emu.stats().minted, 1);
  } finally {
    await w.mf.dispose();
  }
});

test('the KV record has an absolute expiry, and a new isolate reuses it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baseline-kv-'));
  const first = await baseline(dir);
  const { access_token } = await (await first.call('/token', { headers: auth() })).json();
  const stored = await (await first.mf.getKVNamespace('AUTOPAY_TOKENS')).get('baseline-token', 'json');
  assert.equal(stored.token, access_token);
  assert.ok(Math.abs(stored.expiresAt - (Date.now() + 86_400_000)) < 10_000);
  await first.mf.dispose();
  const second = await baseline(dir);
  try {
    assert.equal((await (await second.call('/token', { headers: auth() })).json()).access_token, access_token);
    assert.equal(emu.stats().minted, 1, 'taken from KV, not minted');
  } finally {
    await second.mf.dispose();
  }
});

test('the proxy rewrites the headers and, after an API 401, mints once and retries once', async () => {
  const w = await baseline();
  try {
    const ok = await w.call('/things?x=1', { method: 'POST', body: 'b', headers: { ...auth(), cookie: 'c=1' } });
    const echo = await ok.json();
    assert.deepEqual([ok.status, echo.path, echo.query.x, echo.body, echo.cookie], [200, '/api/things', '1', 'b', null]);
    emu.revoke();
    const retried = await w.call('/again', { method: 'PUT', body: 'replay', headers: auth() });
    assert.equal(retried.status, 200);
    assert.equal((await retried.json()).body, 'replay');
    assert.equal(emu.stats().minted, 2);
  } finally {
    await w.mf.dispose();
  }
});

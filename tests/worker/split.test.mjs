// A split deployment (deploy/split): the front built without the minter (feature `worker-front`,
// src/cloudflare/front-split.js) serves, bound to the `TokenMinter` of a second Worker (the whole
// Worker). Its isolates carry none of the minter's code, and the fleet still mints once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auth, startWorker, startEmulator, storedRecord, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const minterExports = (wasm) =>
  WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(wasm))).map((e) => e.name).filter((n) => n.startsWith('__wbg_tokenminter') || n.startsWith('tokenminter_'));

/** What `wrangler deploy --dry-run -c <config>` bundles: its log and its files. */
function dryRun(config) {
  const outdir = mkdtempSync(join(tmpdir(), 'autopay-auth-split-'));
  const log = execFileSync('bash', ['scripts/deploy.sh', '--dry-run', '-c', config, '--outdir', outdir], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false' },
  });
  return { log, outdir, wasm: join(outdir, readdirSync(outdir).find((f) => f.endsWith('.wasm'))) };
}

test('deploy/split: the front deploys without the minter\'s code, bound to the minter Worker\'s object', () => {
  const front = dryRun('deploy/split/front.toml');
  const minter = dryRun('deploy/split/minter.toml');
  assert.match(front.log, /env\.TOKEN_MINTER \(TokenMinter, defined in autopay-auth-minter\)/);
  assert.match(minter.log, /env\.TOKEN_MINTER \(TokenMinter\)/);
  for (const { log } of [front, minter]) assert.match(log, /--dry-run: exiting now/);
  assert.deepEqual(minterExports(front.wasm), [], 'the front exports no Durable Object');
  assert.ok(minterExports(minter.wasm).length > 0, 'the minter Worker exports the object');
  // the two Workers read the same settings
  const settings = (f) => readFileSync(join(root, f), 'utf8').match(/^(compatibility_date|AUTOPAY_\w+) = .*$/gm);
  assert.deepEqual(settings('deploy/split/front.toml'), settings('wrangler.toml'));
  assert.deepEqual(settings('deploy/split/minter.toml'), settings('wrangler.toml'));
});

test('split: 300 cold /token calls on the front mint once through the other Worker\'s object; a new front isolate reads KV', async (t) => {
  const emu = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  t.after(() => emu.close());
  let w = await startWorker(emu, {}, { split: true });
  try {
    const answers = await Promise.all(Array.from({ length: 300 }, () => w.call('/token', { headers: auth() })));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
    assert.equal(new Set(bodies.map((b) => b.access_token)).size, 1);
    assert.equal(emu.stats().tokenRequests, 1);
    const { isolate } = await (await w.call('/healthz', { headers: auth() })).json();
    assert.equal(isolate.minter_calls >= 1, true);
    // a proxied call presents the token
    const api = await w.call('/customer_club/members?limit=1', { headers: auth() });
    assert.equal(api.status, 200);
    assert.equal(emu.stats().apiUnauthorized, 0);
    const rec = await storedRecord(w.mf);
    assert.ok(rec, 'the minter Worker wrote the sealed record to the shared KV');
    await w.close();
    // a new front (and a new minter instance) over the same KV: served from KV, no mint
    w = await startWorker(emu, {}, { split: true });
    const kv = await w.mf.getKVNamespace('AUTOPAY_TOKENS');
    await kv.put(rec.key, rec.value, { expiration: rec.expiration });
    const again = await (await w.call('/token', { headers: auth() })).json();
    assert.equal(again.access_token, bodies[0].access_token);
    assert.equal(emu.stats().tokenRequests, 1, 'the new front read KV instead of minting');
  } finally {
    await w.close();
  }
});

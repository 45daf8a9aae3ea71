// getToken / getTokenInfo / stats / invalidate of the packed package, against the emulator:
// caching in memory and KV, single-flight, short-lived tokens, KV failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSealed } from '../sealed.mjs';
import { usePackage, sleep } from './helpers.mjs';

const SECRET = 'get-token-test-secret-6f1c2b';
let emu, AutopayAuth, MemoryKV;
const make = (extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: emu.origin, ...extra });

usePackage(SECRET, (s) => ({ emu, AutopayAuth, MemoryKV } = s));

test('first call mints, second is a memory hit', async () => {
  const auth = make();
  const first = await auth.getTokenInfo();
  assert.equal(first.source, 'network');
  assert.equal(first.tokenType, 'Bearer');
  assert.equal(first.scope, 'customer_club');
  assert.ok(first.expiresAt > Date.now() + 86_000_000 && first.expiresAt <= Date.now() + 86_400_000);
  const second = await auth.getTokenInfo();
  assert.deepEqual(second, { ...first, source: 'memory' });
  assert.equal(await auth.getToken(), first.accessToken);
  assert.equal(emu.stats().minted, 1);
  const s = auth.stats();
  assert.equal(s.mints, 1);
  assert.equal(s.memoryHits, 2);
});

test('a second instance on the same KV is a KV hit', async () => {
  const kv = new MemoryKV();
  const a = make({ kv });
  const b = make({ kv });
  const token = await a.getToken();
  const info = await b.getTokenInfo();
  assert.equal(info.source, 'kv');
  assert.equal(info.accessToken, token);
  assert.equal((await b.getTokenInfo()).source, 'memory');
  assert.equal(emu.stats().minted, 1);
  assert.equal(b.stats().kvHits, 1);
});

test('KV holds a versioned record with absolute expiry and remaining TTL, never the secret', async () => {
  const puts = [];
  const kv = new MemoryKV();
  const spy = { get: (k) => kv.get(k), delete: (k) => kv.delete(k), put: (k, v, o) => (puts.push([k, v, o]), kv.put(k, v, o)) };
  const auth = make({ kv: spy });
  const info = await auth.getTokenInfo();
  // the record, and beside it the fleet state (sealed too), written at the same time: in
  // either order
  assert.deepEqual(puts.map(([k]) => k.endsWith(':fleet')).sort(), [false, true]);
  const fleet = puts.find(([k]) => k.endsWith(':fleet'));
  assert.ok(!fleet[1].includes(SECRET) && !fleet[1].includes(info.accessToken));
  const [key, value, opts] = puts.find(([k]) => !k.endsWith(':fleet'));
  assert.ok(!key.includes(SECRET) && !value.includes(SECRET));
  assert.match(key, /^autopay-auth:v2:[0-9a-f]{64}$/);
  assert.ok(!value.includes(info.accessToken), 'sealed');
  const rec = openSealed(value, SECRET, key);
  assert.equal(rec.v, 2);
  assert.equal(rec.access_token, info.accessToken);
  assert.equal(rec.expires_at_ms, info.expiresAt);
  assert.ok(opts.expirationTtl >= 86_390 && opts.expirationTtl <= 86_400, String(opts.expirationTtl));
});

test('500 concurrent cold calls mint once and all get the same token', async () => {
  const auth = make({ kv: new MemoryKV() });
  const tokens = await Promise.all(Array.from({ length: 500 }, () => auth.getToken()));
  assert.equal(new Set(tokens).size, 1);
  assert.equal(emu.stats().minted, 1);
  assert.equal(emu.stats().tokenRequests, 1);
  assert.equal(auth.stats().coalesced, 499);
});

test('a failed mint fails every waiter; after its backoff the next call tries again', async () => {
  const down = { status: 503, body: { error: 'temporarily_unavailable', error_description: 'maintenance' } };
  emu.fault(down, down, down);
  const auth = make();
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => auth.getToken()));
  assert.ok(results.every((r) => r.status === 'rejected' && r.reason.code === 'server_error'));
  assert.equal(emu.stats().tokenRequests, 3, 'one mint, three attempts');
  await assert.rejects(auth.getToken(), (e) => e.code === 'server_error');
  assert.equal(emu.stats().tokenRequests, 3, 'within the 1 s backoff: no request');
  await sleep(1_000);
  assert.equal(typeof (await auth.getToken()), 'string');
  assert.equal(emu.stats().minted, 1);
});

test('short-lived tokens are used for most of their life, re-minted after expiry and not before', async () => {
  emu.setExpiresIn(2); // stale at 1.5 s (±0.1 s), never served after 1.8 s
  const kv = new MemoryKV();
  const auth = make({ kv });
  const seen = new Map(); // token -> expiresAt
  const started = Date.now();
  let apiFailures = 0;
  while (Date.now() - started < 4_000) {
    const info = await auth.getTokenInfo();
    seen.set(info.accessToken, info.expiresAt);
    // never served inside the last 10 % of its life
    assert.ok(info.expiresAt - Date.now() > 150, `served ${info.expiresAt - Date.now()} ms before expiry`);
    if (Date.now() - started < 1_350) assert.equal(emu.stats().minted, 1, 'no re-mint while fresh');
    const res = await fetch(emu.origin + '/v1/ping', { headers: { authorization: `Bearer ${info.accessToken}` } });
    if (res.status !== 200) apiFailures++;
    await sleep(20);
  }
  assert.equal(apiFailures, 0, 'every served token was accepted by the API');
  const minted = emu.stats().minted;
  // one token per ~1.5 s of a 4 s run: 3 or 4 (one more if a refresh is under way at the end)
  assert.ok(minted >= 3 && minted <= 4, `minted ${minted}`);
  assert.equal(seen.size, minted);
  const records = (await kv.list()).keys.filter((k) => !k.name.endsWith(':fleet'));
  assert.equal(records.length, 0, 'a 2-second token is never written to KV (TTL < 60)');
});

test('a stale token is served while one background refresh runs', async () => {
  emu.setExpiresIn(2);
  const auth = make();
  const first = await auth.getToken();
  await sleep(1_650); // stale, still usable
  emu.fault({ delayMs: 300 }); // the refresh takes a while
  const during = await Promise.all(Array.from({ length: 20 }, () => auth.getTokenInfo()));
  assert.ok(during.every((i) => i.accessToken === first));
  await sleep(400);
  const after = await auth.getTokenInfo();
  assert.notEqual(after.accessToken, first);
  assert.equal(emu.stats().minted, 2);
  assert.equal(auth.stats().refreshes, 1);
});

test('waitUntil: each background refresh is handed over, the call\'s own before the client\'s', async () => {
  emu.setExpiresIn(2);
  const handed = { client: [], call: [] };
  const auth = make({ waitUntil: (p) => handed.client.push(p) });
  const first = await auth.getToken();
  await sleep(1_650); // stale, still usable
  assert.equal(await auth.getToken({ waitUntil: (p) => handed.call.push(p) }), first);
  assert.deepEqual([handed.call.length, handed.client.length], [1, 0], 'the call\'s waitUntil got the refresh');
  await handed.call[0]; // settles when the refresh has landed
  assert.notEqual(await auth.getToken(), first);
  await assert.rejects(auth.getTokenInfo({ waitUntil: 'x' }), (e) => e.code === 'invalid_config' && e.option === 'waitUntil');
  // the client's, when a call brings none; a waitUntil that throws changes nothing
  emu.setExpiresIn(2);
  await auth.invalidate();
  const auth2 = make({ waitUntil: (p) => { handed.client.push(p); throw new Error('platform says no'); } });
  const t = await auth2.getToken();
  await sleep(1_650);
  assert.equal(await auth2.getToken(), t);
  assert.equal(handed.client.length, 1);
  await handed.client[0];
  assert.notEqual(await auth2.getToken(), t);
});

test('KV that throws or returns garbage is counted and survived', async () => {
  const broken = {
    get: async () => { throw new Error('kv unavailable'); },
    put: async () => { throw new Error('kv unavailable'); },
    delete: async () => { throw new Error('kv unavailable'); },
  };
  const warn = console.warn;
  const warnings = [];
  console.warn = (...args) => warnings.push(JSON.stringify(args)); // (message, fields)
  try {
    const auth = make({ kv: broken, storeWaitMs: 0 });
    assert.equal(typeof (await auth.getToken()), 'string');
    assert.equal(auth.stats().kvErrors, 2); // the read, and the record's write (minted alone)
    assert.ok(warnings.some((w) => w.includes('KV get failed')));
    assert.ok(!warnings.join().includes(SECRET));
  } finally {
    console.warn = warn;
  }
  const kv = new MemoryKV();
  const probe = make({ kv });
  await probe.getToken();
  const [{ name }] = (await kv.list()).keys;
  await kv.put(name, 'garbage{');
  const fresh = make({ kv });
  assert.equal((await fresh.getTokenInfo()).source, 'network');
});

test('invalidate forgets the token in memory and KV', async () => {
  const kv = new MemoryKV();
  const auth = make({ kv });
  const t1 = await auth.getToken();
  await auth.invalidate();
  // the record is gone; the fleet state (the budget window) stays
  assert.deepEqual((await kv.list()).keys.map((k) => k.name.endsWith(':fleet')), [true]);
  const info = await auth.getTokenInfo();
  assert.equal(info.source, 'network');
  assert.notEqual(info.accessToken, t1);
});

test('CommonJS require works, and is the ESM module itself (one copy, one wasm instance)', async () => {
  const { requirePackage, importPackage } = await import('./helpers.mjs');
  const cjs = requirePackage();
  const esm = await importPackage();
  // require(esm): the same classes, so an error made by one is an instance of the other's class
  assert.equal(cjs.AutopayAuth, esm.AutopayAuth);
  assert.equal(cjs.AutopayAuthError, esm.AutopayAuthError);
  const auth = new cjs.AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, kv: new cjs.MemoryKV() });
  assert.equal((await auth.getTokenInfo()).source, 'network');
  assert.equal((await auth.getTokenInfo()).source, 'memory');
  assert.throws(() => new cjs.AutopayAuth({}), (e) => e instanceof cjs.AutopayAuthError && e.code === 'invalid_config');
});

test('a caller that aborts stops waiting; the shared token request goes on and is cached', async () => {
  emu.fault({ delayMs: 300 });
  const auth = make();
  const controller = new AbortController();
  const gaveUp = auth.getToken({ signal: controller.signal });
  const patient = auth.getTokenInfo();
  controller.abort();
  await assert.rejects(gaveUp, (e) => e.name === 'AbortError');
  const info = await patient;
  assert.equal(info.source, 'network');
  assert.equal(await auth.getToken(), info.accessToken);
  assert.equal(emu.stats().minted, 1, 'the abort cost no extra token');
  // an already aborted signal rejects at once, even on a cache hit
  await assert.rejects(auth.getTokenInfo({ signal: AbortSignal.abort() }), (e) => e.name === 'AbortError');
});

test('autopay-auth/standalone (the wasm inside the JS) works from import and from require', async () => {
  const { installedProject } = await import('./helpers.mjs');
  const { createRequire } = await import('node:module');
  const { pathToFileURL } = await import('node:url');
  const { join } = await import('node:path');
  const { writeFileSync } = await import('node:fs');
  const dir = installedProject();
  writeFileSync(join(dir, 'standalone-reexport.mjs'), "export * from 'autopay-auth/standalone';\n");
  const esm = await import(pathToFileURL(join(dir, 'standalone-reexport.mjs')).href);
  const cjs = createRequire(join(dir, 'package.json'))('autopay-auth/standalone');
  for (const m of [esm, cjs]) {
    await emu.post('/__emulator/reset');
    const auth = new m.AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl });
    assert.equal((await auth.getTokenInfo()).source, 'network');
    assert.equal((await auth.getTokenInfo()).source, 'memory');
    assert.equal(emu.stats().minted, 1);
  }
});

test('autopay-auth/standalone inflates its wasm in JS where the runtime has no node:zlib (fflate)', async () => {
  const { installedProject } = await import('./helpers.mjs');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  await emu.post('/__emulator/reset');
  // a runtime without process.getBuiltinModule (a browser bundle, say): the bundled fflate inflates
  const code = `
    delete process.getBuiltinModule;
    const { AutopayAuth } = await import('autopay-auth/standalone');
    const auth = new AutopayAuth({ clientId: 'cid', clientSecret: ${JSON.stringify(SECRET)}, tokenUrl: ${JSON.stringify(emu.tokenUrl)} });
    const first = await auth.getTokenInfo();
    console.log(JSON.stringify({ builtin: typeof process.getBuiltinModule, source: first.source, again: (await auth.getTokenInfo()).source }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { cwd: installedProject() });
  assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)), { builtin: 'undefined', source: 'network', again: 'memory' });
  assert.equal(emu.stats().minted, 1);
});

test('getTokenInfo hands each caller its own object', async () => {
  const auth = make();
  const [a, b] = await Promise.all([auth.getTokenInfo(), auth.getTokenInfo()]);
  assert.notEqual(a, b);
  a.accessToken = 'mutated';
  assert.notEqual(b.accessToken, 'mutated');
  const c = await auth.getTokenInfo();
  const d = await auth.getTokenInfo();
  assert.notEqual(c, d);
  c.scope = 'mutated';
  assert.notEqual((await auth.getTokenInfo()).scope, 'mutated');
});

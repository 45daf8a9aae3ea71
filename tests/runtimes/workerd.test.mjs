// A plain JavaScript Cloudflare Worker that imports the package (`workerd` export condition,
// the .wasm as a CompiledWasm module, as wrangler bundles it) and uses a real KV binding, in
// workerd through Miniflare; a fresh Worker (isolate and KV) per test. Then the README's Worker
// (examples/runtimes/cloudflare-worker.mjs): no token to a caller without the key.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { consumer, run, bin, startEmulator } from './helpers.mjs';
import { WORKERD_MODULES } from '../worker/helpers.mjs';

let emu, dir, mf;
before(async () => {
  dir = consumer();
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  await run(
    bin('esbuild'),
    ['worker.mjs', '--bundle', '--format=esm', '--conditions=workerd,worker,browser', '--loader:.wasm=copy', '--outdir=dist-worker', '--log-level=warning'],
    { cwd: dir },
  );
  await run(
    bin('esbuild'),
    ['cloudflare-worker.mjs', '--bundle', '--format=esm', '--conditions=workerd,worker,browser', '--loader:.wasm=copy', '--external:cloudflare:workers', '--outdir=dist-readme-worker', '--log-level=warning'],
    { cwd: dir },
  );
});
after(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await emu.post('/__emulator/reset');
  mf = new Miniflare({
    scriptPath: join(dir, 'dist-worker', 'worker.js'),
    modulesRoot: join(dir, 'dist-worker'),
    ...WORKERD_MODULES,
    kvNamespaces: ['TOKENS'],
    bindings: { TOKEN_URL: emu.tokenUrl },
    cf: false,
  });
  await mf.ready;
});
afterEach(() => mf.dispose());

test('a cold burst of concurrent requests in one isolate mints once, and every request succeeds', async () => {
  emu.fault({ delayMs: 200 }); // the token request is still under way when the others arrive
  const answers = await Promise.all(Array.from({ length: 20 }, () => mf.dispatchFetch('http://worker.test/?burst')));
  const bodies = await Promise.all(answers.map((r) => r.json()));
  assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
  assert.equal(new Set(bodies.map((b) => b.token)).size, 1);
  assert.equal(emu.stats().minted, 1);
});

test('gets a token, then a memory hit, then a KV hit for a new client', async () => {
  const first = await (await mf.dispatchFetch('http://worker.test/')).json();
  const second = await (await mf.dispatchFetch('http://worker.test/')).json();
  const fresh = await (await mf.dispatchFetch('http://worker.test/?fresh')).json();
  assert.deepEqual([first.source, second.source, fresh.source], ['network', 'memory', 'kv']);
  assert.ok(first.token === second.token && second.token === fresh.token);
  assert.equal(emu.stats().minted, 1);
  const { keys } = await (await mf.getKVNamespace('TOKENS')).list();
  // the record, and beside it the fleet state
  assert.equal(keys.length, 2);
  assert.match(keys[0].name, /^autopay-auth:v2:[0-9a-f]{64}$/);
  assert.equal(keys[1].name, `${keys[0].name}:fleet`);
});

/** Two requests 1.2 s apart (the token is stale by then); the second starts a refresh whose token
 * request answers 300 ms after that request has answered; then a third request. */
async function refreshAcrossRequests(query) {
  emu.setExpiresIn(20);
  const call = async () => (await mf.dispatchFetch(`http://worker.test/?refresh${query}`)).json();
  const first = await call();
  await new Promise((r) => setTimeout(r, 1_200));
  emu.fault({ delayMs: 300 });
  const second = await call();
  await new Promise((r) => setTimeout(r, 900));
  const third = await call();
  return { first, second, third, tokenRequests: emu.stats().tokenRequests };
}

test('waitUntil: a refresh started by one request completes after that request has answered', async () => {
  const { first, second, third, tokenRequests } = await refreshAcrossRequests('&wait');
  assert.equal(second.token, first.token, 'the stale token is served while the refresh runs');
  assert.notEqual(third.token, first.token, 'the refresh landed');
  assert.equal(third.source, 'memory');
  assert.equal(tokenRequests, 2);
});

test('without waitUntil the refresh dies with its request (why the option exists)', async () => {
  const { first, third, tokenRequests } = await refreshAcrossRequests('');
  // workerd cancels the request's unfinished work when it answers: the refresh never lands
  assert.equal(third.token, first.token, `the refresh did not land (${tokenRequests} token requests)`);
});

// ---- the README's Worker ----

const CALLER_KEY = 'readme-worker-caller-key-0123456789';

async function readmeWorker() {
  const worker = new Miniflare({
    scriptPath: join(dir, 'dist-readme-worker', 'cloudflare-worker.js'),
    modulesRoot: join(dir, 'dist-readme-worker'),
    ...WORKERD_MODULES,
    kvNamespaces: ['AUTOPAY_TOKENS'],
    bindings: { AUTOPAY_CLIENT_ID: 'runtime-client', AUTOPAY_CLIENT_SECRET: 'runtime-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_API_BASE: emu.origin, CALLER_KEY },
    cf: false,
  });
  await worker.ready;
  return worker;
}

test('the README\'s Worker: a caller without the key gets 401 and no token, and nothing is minted or proxied', async (t) => {
  const worker = await readmeWorker();
  t.after(() => worker.dispose());
  // a keyed call first, so a token exists to leak
  assert.equal((await worker.dispatchFetch('http://worker.test/customer_club/members', { headers: { authorization: `Bearer ${CALLER_KEY}` } })).status, 200);
  const before = emu.stats();
  for (const headers of [{}, { authorization: 'Bearer not-the-key-0123456789abcdef' }, { authorization: CALLER_KEY }, { cookie: `key=${CALLER_KEY}` }]) {
    const answer = await worker.dispatchFetch('http://worker.test/customer_club/members', { headers });
    assert.equal(answer.status, 401, JSON.stringify(headers));
    const text = await answer.text();
    assert.deepEqual(emu.issued().filter((tok) => text.includes(tok)), [], 'no token in the answer');
  }
  assert.deepEqual(emu.stats(), before, 'nothing reached Autopay');
});

test('the README\'s Worker: a keyed call reaches the API with the token, never handing it back; a 401 re-mints once', async (t) => {
  const worker = await readmeWorker();
  t.after(() => worker.dispose());
  const key = { authorization: `Bearer ${CALLER_KEY}` };
  const answer = await worker.dispatchFetch('http://worker.test/customer_club/members?limit=2', { headers: { ...key, cookie: 'session=1' } });
  assert.equal(answer.status, 200);
  const text = await answer.text();
  const echoed = JSON.parse(text);
  assert.deepEqual([echoed.path, echoed.query, echoed.cookie], ['/customer_club/members', { limit: '2' }, null]);
  assert.deepEqual(emu.issued().filter((tok) => text.includes(tok)), []);
  assert.equal(emu.stats().minted, 1);
  // an API 401: the token is dropped, one more mint, one retry
  emu.revoke();
  assert.equal((await worker.dispatchFetch('http://worker.test/customer_club/members', { headers: key })).status, 200);
  assert.equal(emu.stats().minted, 2);
});

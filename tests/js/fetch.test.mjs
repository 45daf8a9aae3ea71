// auth.fetch: the token goes only to apiBaseUrl; an API 401 drops that token (only if still
// cached), mints once and retries once when the body can be replayed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSealed } from '../sealed.mjs';
import { usePackage } from './helpers.mjs';

const SECRET = 'fetch-test-secret-77aa';
let emu, AutopayAuth, AutopayAuthError, MemoryKV;
const make = (extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: `${emu.origin}/v1`, ...extra });

usePackage(SECRET, (s) => ({ emu, AutopayAuth, AutopayAuthError, MemoryKV } = s));

test('sends the bearer token with path, query, method and body', async () => {
  const auth = make();
  const res = await auth.fetch('/customers/42?expand=all', { method: 'PUT', body: '{"a":1}', headers: { 'x-trace': '1' } });
  assert.equal(res.status, 200);
  const echo = await res.json();
  assert.deepEqual(
    { method: echo.method, path: echo.path, query: echo.query, body: echo.body },
    { method: 'PUT', path: '/v1/customers/42', query: { expand: 'all' }, body: '{"a":1}' },
  );
  assert.equal(emu.stats().minted, 1);
});

test('an API 401 re-mints once and retries once', async () => {
  const kv = new MemoryKV();
  const auth = make({ kv });
  const old = await auth.getToken();
  emu.revoke(); // the API no longer accepts the cached token
  const res = await auth.fetch('/orders', { method: 'POST', body: 'replayable' });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).body, 'replayable');
  const s = emu.stats();
  assert.equal(s.minted, 2);
  assert.equal(s.apiUnauthorized, 1);
  assert.notEqual(await auth.getToken(), old);
  const key = (await kv.list()).keys[0].name;
  const stored = openSealed(await kv.get(key), SECRET, key);
  assert.notEqual(stored.access_token, old);
});

test('a 401 that persists is returned after one retry, not looped', async () => {
  const auth = make();
  await auth.getToken();
  // every token dies at once: the retry also fails
  const origFetch = globalThis.fetch;
  const spy = async (url, init) => {
    if (String(url).includes('/oauth/token')) return origFetch(url, init);
    emu.revoke();
    return origFetch(url, init);
  };
  const looped = make({ fetch: spy });
  const res = await looped.fetch('/x');
  assert.equal(res.status, 401);
  assert.equal(emu.stats().apiRequests, 2);
});

test('a streamed body is not replayed', async () => {
  const auth = make();
  await auth.getToken();
  emu.revoke();
  const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('once')); c.close(); } });
  const res = await auth.fetch('/upload', { method: 'POST', body, duplex: 'half' });
  assert.equal(res.status, 401);
  assert.equal(emu.stats().apiRequests, 1);
  // the refused token was dropped: the next call works with a new one
  assert.equal((await auth.fetch('/upload', { method: 'POST', body: 'again' })).status, 200);
  assert.equal(emu.stats().minted, 2);
});

test('concurrent 401s mint one new token between them', async () => {
  const auth = make();
  await auth.getToken();
  emu.revoke();
  const all = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/c')));
  assert.ok(all.every((r) => r.status === 200));
  assert.equal(emu.stats().minted, 2);
});

test('the token never leaves apiBaseUrl', async () => {
  const auth = make();
  for (const path of ['https://evil.example/x', '//evil.example/x', '/../admin', 'relative', 42]) {
    await assert.rejects(auth.fetch(path), (e) => e instanceof AutopayAuthError && e.code === 'invalid_argument', String(path));
  }
  assert.equal(emu.stats().apiRequests, 0);
});

test('an API call that fails reaches the caller as the platform error, not a token error', async () => {
  const auth = make();
  await auth.getToken();
  // aborted mid-call: the AbortError the call was aborted with
  const controller = new AbortController();
  const call = auth.fetch('/slow?delayMs=2000', { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(call, (e) => {
    assert.ok(!(e instanceof AutopayAuthError), `got ${e}`);
    assert.equal(e.name, 'AbortError');
    return true;
  });
  // an unreachable API: fetch's own TypeError
  const away = make({ apiBaseUrl: 'http://127.0.0.1:9' });
  await away.getToken();
  await assert.rejects(away.fetch('/x'), (e) => {
    assert.ok(e instanceof TypeError && !(e instanceof AutopayAuthError), `got ${e}`);
    return true;
  });
});

test('init.signal also stops the wait for a token', async () => {
  emu.fault({ delayMs: 1_000 });
  const auth = make();
  const controller = new AbortController();
  const reason = new Error('caller gave up');
  const call = auth.fetch('/x', { signal: controller.signal });
  setTimeout(() => controller.abort(reason), 50);
  const started = Date.now();
  await assert.rejects(call, (e) => e === reason);
  assert.ok(Date.now() - started < 900, 'did not wait for the token');
});

// The proxy: path, query, method, body and status kept; caller credentials replaced; the
// configured API host only; one re-mint and one retry after an API 401.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auth, CALLER_KEY, CLIENT_SECRET, storedRecord, sleep, useWorker } from './helpers.mjs';
import { openSealed } from '../sealed.mjs';

const ctx = useWorker();

test('keeps path, query, method and body; replaces the caller key and drops cookies', async () => {
  const r = await ctx.w.call('/customer_club/members/7?expand=cards&x=%20y', {
    method: 'PATCH',
    body: '{"name":"Ada"}',
    headers: { ...auth(), cookie: 'session=abc', 'content-type': 'application/json', 'x-request-id': 'r1' },
  });
  assert.equal(r.status, 200);
  const echo = await r.json();
  assert.deepEqual(
    { method: echo.method, path: echo.path, query: echo.query, body: echo.body, cookie: echo.cookie },
    { method: 'PATCH', path: '/api/customer_club/members/7', query: { expand: 'cards', x: ' y' }, body: '{"name":"Ada"}', cookie: null },
  );
  // the emulator's API accepted it: so the Autopay token, not the caller key, was sent
  assert.equal(ctx.emu.stats().apiUnauthorized, 0);
  assert.equal(ctx.emu.stats().minted, 1);
});

test('keeps the upstream status and body', async () => {
  for (const status of [201, 404, 418, 500]) {
    const r = await ctx.w.call(`/things/status/${status}`, { headers: auth() });
    assert.equal(r.status, status);
    assert.equal((await r.json()).path, `/api/things/status/${status}`);
  }
});

test('streams a large body through once', async () => {
  const big = 'x'.repeat(2 * 1024 * 1024 - 100_000);
  const r = await ctx.w.call('/upload', { method: 'POST', body: big, headers: auth() });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).body.length, big.length);
});

test('requests only ever reach the configured API host', async () => {
  // `//host/…` is refused (400), whether it comes bodiless (the JS front) or with a body (Rust)
  for (const init of [{}, { method: 'POST', body: 'x' }]) {
    const r = await ctx.w.call('//evil.example/x', { ...init, headers: auth() });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, 'invalid_request');
  }
  for (const path of ['//evil.example/x', '/..%2f..%2fadmin']) {
    const r = await ctx.w.call(path, { headers: auth() });
    if (r.status === 200) {
      assert.match((await r.json()).path, /^\/api\//, path);
    } else {
      assert.equal(r.status, 400, path);
      assert.equal((await r.json()).error, 'invalid_request');
    }
  }
  // the caller's key never reaches Autopay, whatever the path
  assert.equal(ctx.emu.stats().apiUnauthorized, 0);
  void CALLER_KEY;
});

test('an API 401 re-mints once and retries once', async () => {
  await ctx.w.call('/token', { headers: auth() });
  ctx.emu.revoke(); // Autopay no longer accepts the cached token
  const r = await ctx.w.call('/orders', { method: 'POST', body: 'replay me', headers: auth() });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).body, 'replay me');
  const s = ctx.emu.stats();
  assert.equal(s.minted, 2);
  assert.equal(s.apiUnauthorized, 1);
  assert.equal(s.apiRequests, 2);
  // and everyone now gets the new token, from memory
  const again = await ctx.w.call('/orders', { headers: auth() });
  assert.equal(again.status, 200);
  assert.equal(ctx.emu.stats().minted, 2);
  // KV ends with the new token: the refused one is never copied back behind its deletion
  await sleep(300);
  const rec = await storedRecord(ctx.w.mf);
  const { access_token: inKv } = openSealed(rec.value, CLIENT_SECRET, rec.key);
  const { access_token: served } = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.equal(inKv, served);
  assert.equal(ctx.emu.stats().minted, 2);
});

test('concurrent API 401s drop the token once and mint once', async () => {
  await ctx.w.call('/token', { headers: auth() });
  ctx.emu.revoke();
  const all = await Promise.all(Array.from({ length: 20 }, () => ctx.w.call('/c', { headers: auth() })));
  assert.ok(all.every((r) => r.status === 200), all.map((r) => r.status).join());
  assert.equal(ctx.emu.stats().minted, 2);
});

test('proxying needs a caller key', async () => {
  assert.equal((await ctx.w.call('/c')).status, 401);
  assert.equal(ctx.emu.stats().apiRequests, 0);
  assert.equal(ctx.emu.stats().tokenRequests, 0);
});

test('a bodiless call on a live lease is planned by Rust in one synchronous call and sent by the front: one memory hit each, no second lookup in the Rust route', async () => {
  const get = (path) => ctx.w.call(path, { headers: { ...auth(), 'x-request-id': 'r2', cookie: 'a=b' } });
  assert.equal((await get('/customer_club/members?limit=1')).status, 200); // the lease is taken
  const before = (await (await ctx.w.call('/healthz', { headers: auth() })).json()).stats;
  for (let i = 0; i < 20; i++) {
    const r = await get(`/customer_club/members?limit=${i}`);
    assert.equal(r.status, 200);
    const echo = await r.json();
    assert.equal(echo.query.limit, String(i));
    assert.equal(echo.cookie, null);
  }
  const after = (await (await ctx.w.call('/healthz', { headers: auth() })).json()).stats;
  // the Rust route would look the token up again: two hits a call
  assert.equal(after.memoryHits - before.memoryHits, 20, JSON.stringify({ before, after }));
  assert.equal(ctx.emu.stats().minted, 1);
});

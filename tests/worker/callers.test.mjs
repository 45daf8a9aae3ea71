// The Worker's `/token` callers: services with an HTTP client of their own that take a token
// from `GET /token` and call the API themselves. They are told how long to keep an answer, can
// report a token the API refused (`POST /token/refused`: compare-and-delete at the Durable
// Object, bounded by the refusal hold and the mint budget), and the operator has a lever to drop
// the current token (`POST /token/invalidate`, operator keys only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auth, startWorker, useWorker } from './helpers.mjs';

const ctx = useWorker();
const OPERATOR_KEY = 'operator-key-0123456789abcdef';

const token = async (w = ctx.w) => {
  const r = await w.call('/token', { headers: auth() });
  assert.equal(r.status, 200);
  return { body: await r.json(), cacheControl: r.headers.get('cache-control') };
};
const report = (accessToken, headers = auth(), w = ctx.w) =>
  w.call('/token/refused', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ access_token: accessToken }) });

test('/token answers say how long to keep them: private (no shared cache), until the Worker\'s own refresh point', async () => {
  const cold = await token();
  const warm = await token();
  for (const { cacheControl } of [cold, warm]) {
    const m = /^private, max-age=(\d+)$/.exec(cacheControl);
    assert.ok(m, cacheControl);
    // a day-long token is refreshed at 75 % of its life, give or take the jitter (≤ 300 s)
    const secs = Number(m[1]);
    assert.ok(secs >= 0.75 * 86_400 - 301 && secs <= 0.75 * 86_400 + 300, String(secs));
    assert.ok(secs < cold.body.expires_in, 'never past the token\'s life');
  }
});

test('POST /token/refused: twenty callers report the token the API refused at once — dropped once, one new token for all', async () => {
  const { body: first } = await token();
  ctx.emu.revoke(); // the vendor revoked it: every API call with it is refused
  const answers = await Promise.all(Array.from({ length: 20 }, () => report(first.access_token)));
  const results = await Promise.all(answers.map((r) => r.json()));
  assert.ok(answers.every((r) => r.status === 200));
  const counts = Object.groupBy(results, (r) => r.result);
  assert.equal(counts.dropped?.length, 1, JSON.stringify(results));
  assert.equal(counts.not_held?.length, 19, JSON.stringify(results));
  const next = await Promise.all(Array.from({ length: 20 }, () => token()));
  assert.equal(new Set(next.map((t) => t.body.access_token)).size, 1);
  assert.notEqual(next[0].body.access_token, first.access_token);
  assert.equal(ctx.emu.stats().tokenRequests, 2, 'the one refused and its one replacement');
});

test('a caller that reports every token it gets cannot make a storm: the refusal hold keeps the fresh one, and nothing more is minted', async () => {
  const results = [];
  for (let i = 0; i < 10; i++) {
    const { body } = await token();
    results.push((await (await report(body.access_token)).json()).result);
  }
  // the first token is dropped and replaced; the replacement, refused fresh, is kept (the API
  // refuses fresh tokens too: a configuration fault, not a stale token)
  assert.deepEqual(results.slice(0, 2), ['dropped', 'kept'], results.join());
  assert.ok(results.slice(1).every((r) => r === 'kept'), results.join());
  assert.equal(ctx.emu.stats().tokenRequests, 2);
});

test('POST /token/refused needs a caller key and a token, and never echoes it', async () => {
  const { body } = await token();
  assert.equal((await report(body.access_token, {})).status, 401);
  for (const bad of ['{}', 'not json', JSON.stringify({ access_token: 'has space' }), JSON.stringify({ access_token: 'x'.repeat(20_000) })]) {
    const r = await ctx.w.call('/token/refused', { method: 'POST', headers: auth(), body: bad });
    const text = await r.text();
    assert.equal(r.status, 400, bad.slice(0, 40));
    assert.ok(!text.includes(body.access_token));
  }
  assert.equal(ctx.emu.stats().tokenRequests, 1);
});

test('the operator\'s lever: POST /token/invalidate with an operator key drops the token; the next caller gets a new one', async () => {
  // off without operator keys
  assert.equal((await ctx.w.call('/token/invalidate', { method: 'POST', headers: auth() })).status, 404);
  const w = await startWorker(ctx.emu, { OPERATOR_API_KEYS: OPERATOR_KEY });
  try {
    const { body: first } = await token(w);
    // a caller's key is not an operator's
    assert.equal((await w.call('/token/invalidate', { method: 'POST', headers: auth() })).status, 401);
    const r = await w.call('/token/invalidate', { method: 'POST', headers: auth(OPERATOR_KEY) });
    assert.deepEqual([r.status, await r.json()], [200, { dropped: true }]);
    const { body: next } = await token(w);
    assert.notEqual(next.access_token, first.access_token);
    assert.equal(ctx.emu.stats().tokenRequests, 2);
    // an operator's key fetches no token and proxies nothing
    assert.equal((await w.call('/token', { headers: auth(OPERATOR_KEY) })).status, 401);
  } finally {
    await w.close();
  }
  // an operator key that is also a caller's is refused at start
  const shared = await startWorker(ctx.emu, { OPERATOR_API_KEYS: OPERATOR_KEY, PROXY_API_KEYS: OPERATOR_KEY });
  try {
    const r = await shared.call('/token', { headers: auth(OPERATOR_KEY) });
    const body = await r.json();
    assert.equal(r.status, 500);
    assert.deepEqual(body.settings.map((s) => s.setting), ['OPERATOR_API_KEYS']);
  } finally {
    await shared.close();
  }
});

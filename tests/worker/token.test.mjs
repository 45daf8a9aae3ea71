// GET /token: caller keys, one mint for any cold burst, the KV record, remaining expires_in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSealed } from '../sealed.mjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storedRecord, auth, OTHER_KEY, useWorker, startWorker, CLIENT_SECRET } from './helpers.mjs';

const ctx = useWorker();

test('500 concurrent cold /token requests of one isolate: one mint, one KV read, one Durable Object call', async () => {
  const answers = await Promise.all(Array.from({ length: 500 }, () => ctx.w.call('/token', { headers: auth() })));
  const bodies = await Promise.all(answers.map((r) => r.json()));
  assert.ok(answers.every((r) => r.status === 200));
  assert.equal(new Set(bodies.map((b) => b.access_token)).size, 1);
  assert.equal(ctx.emu.stats().minted, 1);
  assert.equal(ctx.emu.stats().tokenRequests, 1);
  const b = bodies[0];
  assert.equal(b.token_type, 'Bearer');
  assert.equal(b.scope, 'customer_club');
  assert.ok(b.expires_in > 86_390 && b.expires_in <= 86_400, String(b.expires_in));
  // the burst waited on one promise of the JS front: one call into the Rust cache
  const { isolate, stats } = await (await ctx.w.call('/healthz', { headers: auth() })).json();
  assert.deepEqual(isolate, { kv_reads: 1, minter_calls: 1 });
  assert.equal(stats.coalesced + stats.memoryHits, 499, JSON.stringify(stats));
  // warm: answered from the front's lease, no further I/O
  await Promise.all(Array.from({ length: 50 }, () => ctx.w.call('/token', { headers: auth() })));
  const warm = await (await ctx.w.call('/healthz', { headers: auth() })).json();
  assert.deepEqual(warm.isolate, { kv_reads: 1, minter_calls: 2 }, 'only the first /healthz asked the minter since');
  assert.equal(warm.stats.memoryHits - stats.memoryHits, 50);
});

test('expires_in is the remaining lifetime', async () => {
  ctx.emu.setExpiresIn(120);
  await ctx.w.call('/token', { headers: auth() });
  await new Promise((r) => setTimeout(r, 2_100));
  const b = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.ok(b.expires_in >= 116 && b.expires_in <= 118, String(b.expires_in));
  assert.equal(ctx.emu.stats().minted, 1);
});

test('KV holds the record with absolute expiry and the right TTL, never the secret', async () => {
  const { access_token } = await (await ctx.w.call('/token', { headers: auth() })).json();
  const rec = await storedRecord(ctx.w.mf);
  assert.ok(rec, 'a record was written');
  assert.match(rec.key, /^autopay-auth:v2:[0-9a-f]{64}$/);
  assert.ok(!rec.key.includes(CLIENT_SECRET) && !rec.value.includes(CLIENT_SECRET));
  assert.ok(!rec.value.includes(access_token), 'sealed');
  const value = openSealed(rec.value, CLIENT_SECRET, rec.key);
  assert.equal(value.v, 2);
  assert.equal(value.access_token, access_token);
  assert.ok(Math.abs(value.expires_at_ms - (value.issued_at_ms + 86_400_000)) < 1);
  // KV expiration = absolute expiry (TTL from the remaining lifetime), to the second
  assert.ok(Math.abs(rec.expiration - value.expires_at_ms / 1000) <= 2, `${rec.expiration} vs ${value.expires_at_ms}`);
});

test('a short-lived token is kept out of KV (TTL would be below 60)', async () => {
  ctx.emu.setExpiresIn(30);
  assert.equal((await ctx.w.call('/token', { headers: auth() })).status, 200);
  assert.equal(await storedRecord(ctx.w.mf), null);
});

test('a token already in KV is served without asking the minter', async () => {
  const first = await (await ctx.w.call('/token', { headers: auth() })).json();
  const rec = await storedRecord(ctx.w.mf);
  await ctx.w.close();
  // a new isolate and a new Durable Object, with the same KV contents
  ctx.w = await startWorker(ctx.emu);
  const kv = await ctx.w.mf.getKVNamespace('AUTOPAY_TOKENS');
  await kv.put(rec.key, rec.value, { expiration: rec.expiration });
  const again = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.equal(again.access_token, first.access_token);
  assert.equal(ctx.emu.stats().minted, 1, 'the second worker read KV instead of minting');
});

test('caller keys: missing, wrong or malformed → 401; any listed key works', async () => {
  for (const headers of [{}, auth('wrong-key-0123456789abc'), { authorization: 'Basic abc' }, { authorization: 'Bearer ' }]) {
    const r = await ctx.w.call('/token', { headers });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await r.json()).error, 'unauthorized');
  }
  assert.equal((await ctx.w.call('/token', { headers: auth(OTHER_KEY) })).status, 200);
  assert.equal(ctx.emu.stats().minted, 1);
});

test('/healthz says only ok without a key; with one, the token state, never a token or secret', async () => {
  for (const headers of [{}, auth('not-a-caller-key-at-all')]) {
    const bare = await ctx.w.call('/healthz', { headers });
    assert.deepEqual([bare.status, await bare.json()], [200, { ok: true }]);
  }
  let h = await (await ctx.w.call('/healthz', { headers: auth() })).json();
  assert.deepEqual([h.config, h.token.state], ['complete', 'none']);
  const { access_token } = await (await ctx.w.call('/token', { headers: auth() })).json();
  const r = await ctx.w.call('/healthz', { headers: auth() });
  const text = await r.text();
  h = JSON.parse(text);
  assert.equal(r.status, 200);
  assert.equal(h.token.state, 'fresh');
  assert.ok(h.token.expires_at > Date.now());
  assert.ok(!text.includes(access_token) && !text.includes(CLIENT_SECRET));
});

test('a health key (HEALTH_API_KEYS) reads the detailed /healthz and nothing else: no token, no proxying', async () => {
  const HEALTH_KEY = 'monitoring-only-key-0123456789';
  const w = await startWorker(ctx.emu, { HEALTH_API_KEYS: HEALTH_KEY });
  try {
    const { access_token } = await (await w.call('/token', { headers: auth() })).json();
    const r = await w.call('/healthz', { headers: auth(HEALTH_KEY) });
    const text = await r.text();
    const h = JSON.parse(text);
    assert.deepEqual([r.status, h.config, h.token.state], [200, 'complete', 'fresh']);
    assert.ok(h.stats && h.isolate && h.minter, 'the detail: counters, this isolate\'s I/O, the mint ledger');
    assert.ok(!text.includes(access_token) && !text.includes(CLIENT_SECRET));
    const before = ctx.emu.stats();
    for (const [path, init] of [['/token', {}], ['/customer_club/members', {}], ['/customer_club/members', { method: 'POST', body: '{}' }]]) {
      const refused = await w.call(path, { ...init, headers: auth(HEALTH_KEY) });
      assert.equal(refused.status, 401, path);
      assert.ok(!(await refused.text()).includes(access_token));
    }
    assert.deepEqual(ctx.emu.stats(), before, 'nothing minted or proxied for it');
  } finally {
    await w.close();
  }
});

test('the minting authority logs a JSON line per mint and keeps a mint ledger, shown in the keyed /healthz', async () => {
  await Promise.all(Array.from({ length: 20 }, () => ctx.w.call('/token', { headers: auth() })));
  const h = await (await ctx.w.call('/healthz', { headers: auth() })).json();
  const { ledger, stats } = h.minter;
  assert.equal(stats.mints, 1);
  assert.equal(ledger.mints_per_hour.length, 1);
  const [hour, count] = ledger.mints_per_hour[0];
  assert.equal(count, 1);
  assert.ok(hour <= Date.now() && Date.now() - hour < 3_600_000);
  assert.ok(Math.abs(ledger.last_mint - Date.now()) < 60_000);
  assert.equal(ledger.last_failure, null);
  await new Promise((r) => setTimeout(r, 200)); // let workerd's output arrive
  const lines = ctx.w.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const mints = lines.filter((l) => l.event?.type === 'mint');
  assert.equal(mints.length, 1, JSON.stringify(ctx.w.logs));
  assert.deepEqual([mints[0].level, mints[0].message], ['info', 'autopay-auth: minted a token']);
  assert.ok(!JSON.stringify(ctx.w.logs).includes(CLIENT_SECRET));
});

test('the mint ledger and the mint budget are kept in the Durable Object\'s storage: a restart resets neither', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'autopay-auth-do-'));
  const first = await startWorker(ctx.emu, {}, { durableObjectsPersist: dir });
  try {
    assert.equal((await first.call('/token', { headers: auth() })).status, 200);
  } finally {
    await first.close();
  }
  const again = await startWorker(ctx.emu, {}, { durableObjectsPersist: dir });
  try {
    const { minter } = await (await again.call('/healthz', { headers: auth() })).json();
    assert.equal(minter.stats.mints, 0, 'the restarted object minted nothing');
    assert.equal(minter.ledger.mints_per_hour[0][1], 1, 'yet it knows of the mint before the restart');
    assert.ok(minter.ledger.last_mint > Date.now() - 60_000);
    assert.deepEqual(minter.budget, { used: 1, allowed: 11 }, 'and counts it against the budget');
  } finally {
    await again.close();
  }
});

test('the token record is kept in the Durable Object\'s storage: after a restart with an empty KV, no mint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'autopay-auth-do-'));
  const first = await startWorker(ctx.emu, {}, { durableObjectsPersist: dir });
  let token;
  try {
    ({ access_token: token } = await (await first.call('/token', { headers: auth() })).json());
  } finally {
    await first.close();
  }
  // a new workerd: new isolate, new (empty) KV, the object's storage kept
  const again = await startWorker(ctx.emu, {}, { durableObjectsPersist: dir });
  try {
    const b = await (await again.call('/token', { headers: auth() })).json();
    assert.equal(b.access_token, token, 'the object served its stored token');
    assert.equal(ctx.emu.stats().minted, 1);
    assert.ok(await storedRecord(again.mf), 'and copied it to KV again');
  } finally {
    await again.close();
  }
});

test('a metered vendor: the Durable Object keeps a quota the endpoint declares (2 an hour) and AUTOPAY_MINT_BUDGET; /token answers 503 with Retry-After once it is spent', { timeout: 30_000 }, async () => {
  const run = async (w) => {
    const statuses = [];
    let retryAfter;
    for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      const r = await w.call('/token', { headers: auth() });
      statuses.push(r.status);
      if (r.status === 503) {
        retryAfter = Number(r.headers.get('retry-after'));
        assert.equal((await r.json()).error, 'mint_budget_exhausted');
      } else await r.arrayBuffer();
    }
    return { statuses, retryAfter };
  };
  ctx.emu.setExpiresIn(2);
  await ctx.emu.post('/__emulator/config', { quota: { kind: 'okta', limit: 2, windowSec: 3_600 } });
  const declared = await run(ctx.w);
  assert.equal(ctx.emu.stats().tokenRequests, 2, 'the declared quota');
  assert.equal(ctx.emu.stats().overQuota, 0);
  assert.ok(declared.statuses.includes(200) && declared.statuses.includes(503), declared.statuses.join());
  assert.ok(declared.retryAfter > 3_500, String(declared.retryAfter));

  await ctx.emu.post('/__emulator/reset');
  ctx.emu.setExpiresIn(2);
  const w = await startWorker(ctx.emu, { AUTOPAY_MINT_BUDGET: '1/hour' });
  try {
    const own = await run(w);
    assert.equal(ctx.emu.stats().tokenRequests, 1, 'the budget set for the Worker');
    assert.ok(own.retryAfter > 3_500, String(own.retryAfter));
  } finally {
    await w.close();
  }
});

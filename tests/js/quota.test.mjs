// Metered vendors, tried as their users would: a token endpoint that declares its quota in every
// answer — as Auth0 (`Auth0-Client-Quota-Limit`), Okta (`X-Rate-Limit-*`) or the IETF fields
// (`RateLimit` / `RateLimit-Policy`) do — and 2-second tokens, so a client that ignored the quota
// would ask every couple of seconds; and the fleet's own limits (`mintBudget`), for a vendor that
// declares nothing. The fleet of separate processes on Redis is in tests/runtimes/fleet.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { rejection, sleep, startEmulator, usePackage } from './helpers.mjs';

const SECRET = 'quota-secret-2719';
let emu, AutopayAuth;
usePackage(SECRET, (s) => ({ emu, AutopayAuth } = s));

/** Calls `getToken` every 100 ms for `ms`; what was served and what failed. */
async function callFor(auth, ms) {
  const errors = [];
  let served = 0;
  for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) {
    try {
      await auth.getToken();
      served++;
    } catch (e) {
      errors.push(e);
    }
  }
  return { served, errors };
}

const NAMES = { auth0: 'auth0-client:per_hour', okta: 'okta', ietf: 'ratelimit:tokens' };

test('a quota of 3 an hour declared the Auth0, the Okta and the IETF way, with 2-second tokens: one client asks at most 3 times in 10 s, then callers get mint_budget_exhausted with retryAfter until the reset', { timeout: 60_000 }, async () => {
  const results = await Promise.all(
    Object.keys(NAMES).map(async (kind) => {
      const vendor = await startEmulator({ clientId: 'cid', clientSecret: SECRET, expiresIn: 2 });
      try {
        await vendor.post('/__emulator/config', { quota: { kind, limit: 3, windowSec: 3_600 } });
        const events = [];
        const auth = new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: vendor.tokenUrl, logger: null, onEvent: (e) => events.push(e) });
        const { served, errors } = await callFor(auth, 10_000);
        const { tokenRequests, overQuota } = vendor.stats();
        return { kind, tokenRequests, overQuota, served, errors, events, quotas: auth.quotas(), stats: auth.stats() };
      } finally {
        await vendor.close();
      }
    }),
  );
  console.log('# declared quota, one client, 10 s:', JSON.stringify(results.map(({ kind, tokenRequests, overQuota, served, errors }) => ({ kind, tokenRequests, overQuota, served, failed: errors.length }))));
  for (const r of results) {
    const name = NAMES[r.kind];
    assert.equal(r.tokenRequests, 3, `${r.kind}: the quota used, and no more`);
    assert.equal(r.overQuota, 0, `${r.kind}: never asked past it`);
    assert.ok(r.served > 10 && r.errors.length > 10, `${r.kind}: served ${r.served}, failed ${r.errors.length}`);
    for (const e of r.errors) {
      assert.equal(e.code, 'mint_budget_exhausted', `${r.kind}: ${e.message}`);
      assert.ok(e.retryAfter > 3_500 && e.retryAfter <= 3_600, `${r.kind}: retryAfter ${e.retryAfter} (the hour's reset)`);
    }
    const said = r.events.filter((e) => e.type === 'quota');
    assert.deepEqual(said.map((e) => [e.detail, e.remaining, e.limit]), [[name, 2, 3], [name, 1, 3], [name, 0, 3]], `${r.kind}: ${JSON.stringify(said)}`);
    const refused = r.events.filter((e) => e.type === 'budget_exhausted');
    assert.ok(refused.length >= 1 && refused.every((e) => e.detail === name), JSON.stringify(refused));
    assert.equal(r.quotas.length, 1);
    assert.deepEqual([r.quotas[0].name, r.quotas[0].limit, r.quotas[0].remaining], [name, 3, 0]);
    assert.ok(r.quotas[0].resetAt > Date.now() + 3_500_000, 'resets an hour after it was set');
  }
});

test('the quota is reported as an OpenTelemetry gauge, autopay_auth.quota.remaining, by its name', async () => {
  class Reader extends MetricReader {
    async onForceFlush() {}
    async onShutdown() {}
  }
  const reader = new Reader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter('test');
  await emu.post('/__emulator/config', { quota: { kind: 'auth0', limit: 10, windowSec: 86_400 } });
  const auth = new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, logger: null, telemetry: { meter } });
  await auth.getToken();
  const { resourceMetrics } = await reader.collect();
  const gauge = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'autopay_auth.quota.remaining');
  assert.deepEqual(
    gauge?.dataPoints.map((p) => [p.value, p.attributes]),
    [[9, { 'autopay_auth.quota.name': 'auth0-client:per_day' }]],
  );
});

// (kept by a whole fleet on a store that locks: tests/runtimes/fleet.test.mjs)
test('mintBudget, for a vendor that declares nothing: 2 an hour with 2-second tokens is 2 token requests in 6 s', { timeout: 30_000 }, async () => {
  emu.setExpiresIn(2);
  const auth = new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, logger: null, mintBudget: '2/hour' });
  const { errors } = await callFor(auth, 6_000);
  assert.equal(emu.stats().tokenRequests, 2);
  assert.ok(errors.length > 0 && errors.every((e) => e.code === 'mint_budget_exhausted' && e.retryAfter > 3_500), errors.map((e) => e.code).join());
});

test('mintBudget accepts { perHour, perDay, perMonth } or the Worker\'s text, and refuses anything else by name', async () => {
  const make = (mintBudget) => new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, logger: null, mintBudget });
  for (const ok of [undefined, null, { perHour: 3 }, { perDay: 50, perMonth: 1_000 }, { perHour: undefined }, '3/hour, 1000/month', '']) make(ok);
  for (const bad of [{ perWeek: 3 }, { perHour: 0 }, { perHour: 1.5 }, { perDay: '5' }, [3], 3, '3/week', '0/hour', '2/hour, 3/hour']) {
    const e = await rejection((async () => make(bad))());
    assert.equal(e.code, 'invalid_config', JSON.stringify(bad));
    assert.equal(e.option, 'mintBudget', JSON.stringify(bad));
  }
});

// Short-lived tokens under continuous traffic: no failed request, the expected number of
// mints; and the cron trigger refreshes ahead so requests do not wait for a mint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auth, sleep, useWorker } from './helpers.mjs';

const ctx = useWorker();

test('token rotation under continuous traffic: no failed request, expected mints', async () => {
  ctx.emu.setExpiresIn(4); // stale after 3 s (±0.2 s), never served after 3.6 s
  const DURATION = 10_000;
  const started = Date.now();
  const failures = [];
  const tokens = new Set();
  let requests = 0;
  const loop = async (n) => {
    while (Date.now() - started < DURATION) {
      const token = await ctx.w.call('/token', { headers: auth() });
      if (token.status !== 200) failures.push(`token ${token.status}`);
      else tokens.add((await token.json()).access_token);
      const api = await ctx.w.call(`/loop/${n}`, { method: 'POST', body: 'x', headers: auth() });
      if (api.status !== 200) failures.push(`api ${api.status} ${await api.text()}`);
      else await api.arrayBuffer();
      requests += 2;
      await sleep(20);
    }
  };
  await Promise.all([0, 1, 2, 3].map(loop));
  assert.deepEqual(failures, []);
  assert.ok(requests > 200, `only ${requests} requests`);
  const { minted, apiUnauthorized } = ctx.emu.stats();
  assert.equal(apiUnauthorized, 0, 'no expired token ever reached the API');
  // one token per ~3 s of a 10 s run: 4, or 5 if a refresh was under way at the end
  assert.ok(minted >= 4 && minted <= 5, `minted ${minted}`);
  assert.equal(tokens.size, minted);
});

test('the cron mints ahead on a cold start and refreshes a stale token', async () => {
  ctx.emu.setExpiresIn(4);
  const worker = await ctx.w.mf.getWorker();
  await worker.scheduled({ cron: '*/10 * * * *' });
  assert.equal(ctx.emu.stats().minted, 1, 'cron minted on a cold start');
  const first = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.equal(ctx.emu.stats().minted, 1, 'the request did not wait for a mint');

  await sleep(3_300); // stale now (for everyone: 3 s ± 0.2 s)
  await worker.scheduled({ cron: '*/10 * * * *' });
  assert.equal(ctx.emu.stats().minted, 2, 'cron refreshed the stale token');
  // the isolate still holds the old token: it serves it while it picks up the new one in the
  // background from the minter, which already has it: no mint on the request path
  const during = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.equal(during.access_token, first.access_token);
  await sleep(100);
  const after = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.notEqual(after.access_token, first.access_token);
  assert.equal(ctx.emu.stats().minted, 2);
});

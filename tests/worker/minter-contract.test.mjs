// The minting authority's side of the store contract, on the real Durable Object in workerd,
// asked directly through its namespace (as every isolate asks it): 50 concurrent asks make one
// mint (the object is the fleet's one minter: its single flight is the lock); the record it
// writes comes back byte for byte; a refusal deletes only the token it names — a late refusal of
// a token already replaced leaves the newer one in the object and in KV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSealed } from '../sealed.mjs';
import { auth, storedRecord, useWorker, CLIENT_SECRET } from './helpers.mjs';

const ctx = useWorker();

/** Asks the object named `name` directly, with the isolates' wire: `{ tenant, key, ask, … }` →
 * JSON (the single tenant: `tenant` null, `key` the name the object is known by). */
async function ask(mf, name, body, envelope = { tenant: null, key: name }) {
  const ns = await mf.getDurableObjectNamespace('TOKEN_MINTER');
  const stub = ns.get(ns.idFromName(name));
  const r = await stub.fetch('https://token-minter.internal/', { method: 'POST', body: JSON.stringify({ ...envelope, ...body }) });
  return { status: r.status, body: await r.json() };
}

test('the Durable Object keeps the minting contract: one mint for 50 concurrent asks, compare-and-delete of a refused token', async () => {
  const { mf } = ctx.w;
  // the object is named by the cache key, which is the record's key in KV
  const first = await ctx.w.call('/token', { headers: auth() });
  const t1 = (await first.json()).access_token;
  const rec = await storedRecord(mf);
  assert.ok(rec, 'the record was copied to KV');
  const name = rec.key;
  assert.equal(openSealed(rec.value, CLIENT_SECRET, name).access_token, t1, 'byte for byte: the KV copy opens to the token');

  // the token refused: the object drops it (its storage and KV), and 50 concurrent asks for a
  // replacement make one mint
  const dropped = await ask(mf, name, { ask: 'invalidate', token: t1 });
  assert.deepEqual(dropped, { status: 200, body: { result: 'dropped' } });
  const answers = await Promise.all(Array.from({ length: 50 }, () => ask(mf, name, { ask: 'token', replacing: t1 })));
  const t2 = new Set(answers.map((a) => a.body.access_token));
  assert.equal(t2.size, 1, 'one token for all 50');
  assert.equal(ctx.emu.stats().minted, 2, 'one mint for the 50');
  const [newer] = [...t2];
  assert.notEqual(newer, t1);

  // a late refusal of the replaced token: the newer record stays, in the object and in KV
  assert.deepEqual(await ask(mf, name, { ask: 'invalidate', token: t1 }), { status: 200, body: { result: 'not_held' } });
  const kept = await storedRecord(mf);
  assert.equal(openSealed(kept.value, CLIENT_SECRET, name).access_token, newer, 'KV keeps the newer token');
  const again = await ask(mf, name, { ask: 'token' });
  assert.equal(again.body.access_token, newer, 'the object keeps it too');
  assert.equal(ctx.emu.stats().minted, 2, 'and nothing more was minted');

  // an object serves the one configuration and tenant it was named for: an ask that names
  // another is refused, never answered with this object's token
  const foreign = await ask(mf, name, { ask: 'token' }, { tenant: null, key: 'autopay-auth:v3:another' });
  assert.equal(foreign.status, 400);
  assert.equal(foreign.body.access_token, undefined);
  const tenant = await ask(mf, name, { ask: 'token' }, { tenant: 'beta', key: name });
  assert.equal(tenant.status, 400);
  assert.equal(tenant.body.access_token, undefined);
  assert.equal(ctx.emu.stats().minted, 2);
});

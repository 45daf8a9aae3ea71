// MemoryKV: the KVNamespace shape and its rules.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { importPackage } from './helpers.mjs';

let MemoryKV;
before(async () => ({ MemoryKV } = await importPackage()));

test('get / put / delete / list', async () => {
  const kv = new MemoryKV();
  assert.equal(await kv.get('a'), null);
  await kv.put('a', '1');
  await kv.put('b', '{"x":2}');
  assert.equal(await kv.get('a'), '1');
  assert.deepEqual(await kv.get('b', 'json'), { x: 2 });
  assert.deepEqual((await kv.list({ prefix: 'a' })).keys, [{ name: 'a' }]);
  await kv.delete('a');
  assert.equal(await kv.get('a'), null);
});

test('expirationTtl is honoured and must be at least 60', async () => {
  let now = 1_000_000;
  const kv = new MemoryKV({ now: () => now });
  await kv.put('k', 'v', { expirationTtl: 60 });
  now += 59_999;
  assert.equal(await kv.get('k'), 'v');
  now += 1;
  assert.equal(await kv.get('k'), null);
  await assert.rejects(kv.put('k', 'v', { expirationTtl: 59 }), /at least 60/);
  await assert.rejects(kv.put('k', 5), /string/);
});

// The KV adapters against the real stores: Redis (Debian's redis-server on 127.0.0.1) shared by
// four Node processes, and Deno KV shared by three Deno processes. Each store can set-if-absent,
// so the processes mint once between them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { consumer, run, bin, lastJson, startEmulator, startRedis, root } from './helpers.mjs';

let emu, dir, redis, redisUrl, scratch;

before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-auth-kv-'));
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  redis = await startRedis(scratch);
  redisUrl = redis.url;
});

after(async () => {
  redis?.stop();
  await emu?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;

test('Redis: the adapter keeps the record with its TTL and honours set-if-absent', async () => {
  const { createClient } = await import(redisModule);
  const { redisKV } = await import(pathToFileURL(join(dir, 'node_modules', 'autopay-auth', 'redis.js')).href);
  const client = await createClient({ url: redisUrl }).connect();
  try {
    const kv = redisKV(client, { prefix: 'adapter-test:' });
    assert.equal(await kv.get('k'), null);
    await kv.put('k', 'v', { expirationTtl: 120 });
    assert.equal(await kv.get('k'), 'v');
    const ttl = Number(await client.sendCommand(['TTL', 'adapter-test:k']));
    assert.ok(ttl > 110 && ttl <= 120, String(ttl));
    assert.equal(await kv.putIfAbsent('lock', 'a', { ttlMs: 5_000 }), true);
    assert.equal(await kv.putIfAbsent('lock', 'b', { ttlMs: 5_000 }), false);
    await kv.delete('lock');
    assert.equal(await kv.putIfAbsent('lock', 'c', { ttlMs: 5_000 }), true);
  } finally {
    await client.quit();
  }
});

test('Redis: four processes bursting on a cold cache mint once between them', async () => {
  await emu.post('/__emulator/reset');
  emu.fault({ delayMs: 300 }); // the winner's token request takes a while
  const startAt = Date.now() + 1_500;
  const outs = await Promise.all(
    [0, 1, 2, 3].map(() => run(process.execPath, ['redis-process.mjs', emu.tokenUrl, redisUrl, String(startAt), redisModule], { cwd: dir })),
  );
  const results = outs.map(lastJson);
  const tokens = new Set(results.flatMap((r) => r.tokens));
  assert.equal(tokens.size, 1, JSON.stringify(results));
  assert.equal(emu.stats().minted, 1);
  assert.equal(results.reduce((n, r) => n + r.stats.mints, 0), 1);
  assert.equal(results.reduce((n, r) => n + r.stats.kvHits, 0), 3);
});

test('Deno KV: three processes bursting on a cold cache mint once between them', async () => {
  await emu.post('/__emulator/reset');
  emu.fault({ delayMs: 300 });
  const db = join(scratch, 'tokens.sqlite');
  const host = new URL(emu.origin).host;
  const startAt = Date.now() + 2_500;
  const args = [
    'run', '--no-prompt', '--unstable-kv', `--allow-net=${host}`,
    `--allow-read=${join(dir, 'node_modules', 'autopay-auth')},${scratch}`, `--allow-write=${scratch}`,
    'deno-kv-process.mjs', emu.tokenUrl, db, String(startAt),
  ];
  const env = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' };
  const outs = await Promise.all([0, 1, 2].map(() => run(bin('deno'), args, { cwd: dir, env })));
  const results = outs.map(lastJson);
  const report = JSON.stringify(results.map((r) => ({ mints: r.stats.mints, kvHits: r.stats.kvHits, kvErrors: r.stats.kvErrors, late: r.late })));
  assert.equal(new Set(results.flatMap((r) => r.tokens)).size, 1, report);
  assert.equal(emu.stats().minted, 1, report);
  assert.equal(results.reduce((n, r) => n + r.stats.mints, 0), 1);
  // afterwards: the record is stored as a string under the prefix, and the lock is gone
  const listing = await run(
    bin('deno'),
    ['eval', '--unstable-kv', `const kv = await Deno.openKv(${JSON.stringify(db)}); const out = [];
      for await (const e of kv.list({ prefix: ['autopay-auth'] })) out.push({ key: e.key.at(-1), type: typeof e.value });
      console.log(JSON.stringify(out));`],
    { env },
  );
  const stored = lastJson(listing);
  // the record and, beside it, the fleet state (both sealed strings); the lock is gone
  assert.equal(stored.length, 2, JSON.stringify(stored));
  assert.match(stored[0].key, /^autopay-auth:v2:[0-9a-f]{64}$/);
  assert.equal(stored[1].key, `${stored[0].key}:fleet`);
  assert.ok(stored.every((e) => e.type === 'string'));
});

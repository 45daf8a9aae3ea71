// The KV adapters against the real stores: Redis (Debian's redis-server on 127.0.0.1) shared by
// four Node processes, and Deno KV shared by three Deno processes. Each store can set-if-absent,
// so the processes mint once between them. Upstash (the @upstash/redis client, against a stand-in
// of its REST API over the same redis-server) and DynamoDB (the AWS SDK against dynalite) keep
// values byte for byte, with their TTLs, and lock; what each store takes as its shortest TTL
// decides whether a short-lived token is shared.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { consumer, run, bin, lastJson, startDynamo, startEmulator, startRedis, root } from './helpers.mjs';
import { upstashStandIn } from './upstash-standin.mjs';

let emu, dir, redis, redisUrl, scratch, standIn, dynamo;

before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-auth-kv-'));
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  redis = await startRedis(scratch);
  redisUrl = redis.url;
  standIn = await upstashStandIn({ redisUrl, redisModule, token: 'upstash-test-token' });
  dynamo = await startDynamo();
});

after(async () => {
  await standIn?.close();
  await dynamo?.close();
  redis?.stop();
  await emu?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;
/** A module of the packed package (or of a peer the consumer installed), imported as from the
 * consumer project (its ESM entry). */
function fromConsumer(spec) {
  const file = join(dir, `reexport-${spec.replace(/\W/g, '_')}.mjs`);
  writeFileSync(file, `export * from '${spec}';\n`);
  return import(pathToFileURL(file).href);
}

// values a client could mistake for something else: JSON, numbers, Redis's `OK`, non-ASCII
const AWKWARD = ['{"a":1}', '42', '1e3', ' 7', 'OK', 'null', 'true', '"quoted"', 'héllo ✓', 'v2.AbC-_9'];

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
  // the database exists before the fleet starts, as it does in use
  await run(bin('deno'), ['eval', '--unstable-kv', `(await Deno.openKv(${JSON.stringify(db)})).close();`], { env });
  const outs = await Promise.all([0, 1, 2].map(() => run(bin('deno'), args, { cwd: dir, env })));
  const results = outs.map(lastJson);
  const report = JSON.stringify(results.map((r) => ({ mints: r.stats.mints, kvHits: r.stats.kvHits, kvErrors: r.stats.kvErrors, late: r.late })));
  assert.equal(new Set(results.flatMap((r) => r.tokens)).size, 1, report);
  assert.equal(emu.stats().minted, 1, report);
  assert.equal(results.reduce((n, r) => n + r.stats.mints, 0), 1);
  // afterwards: the record is stored as a string with its deadline beside it (Deno KV deletes
  // expired keys late) under the prefix, and the lock is gone
  const listing = await run(
    bin('deno'),
    ['eval', '--unstable-kv', `const kv = await Deno.openKv(${JSON.stringify(db)}); const out = [];
      for await (const e of kv.list({ prefix: ['autopay-auth'] })) out.push({ key: e.key.at(-1), type: typeof e.value?.value, until: e.value?.until });
      console.log(JSON.stringify(out));`],
    { env },
  );
  const stored = lastJson(listing);
  // the record and, beside it, the fleet state (both sealed strings); the lock is gone
  assert.equal(stored.length, 2, JSON.stringify(stored));
  assert.match(stored[0].key, /^autopay-auth:v2:[0-9a-f]{64}$/);
  assert.equal(stored[1].key, `${stored[0].key}:fleet`);
  assert.ok(stored.every((e) => e.type === 'string' && e.until > Date.now()), JSON.stringify(stored));
});

test('Upstash: values round-trip byte for byte, whatever the client is set to parse or encode', async () => {
  const { Redis } = await fromConsumer('@upstash/redis');
  const { upstashKV } = await fromConsumer('autopay-auth/upstash');
  const settings = [{}, { automaticDeserialization: false }, { responseEncoding: false }];
  for (const extra of settings) {
    const redisClient = new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false, ...extra });
    const kv = upstashKV(redisClient, { prefix: 'ups:' });
    for (const v of AWKWARD) {
      await kv.put('k', v, { expirationTtl: 60 });
      assert.equal(await kv.get('k'), v, `${JSON.stringify(extra)}: ${v}`);
    }
  }
  // what the adapter steps around: the client's own get parses '42' into a number
  const plain = new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false });
  await plain.set('ups:n', '42');
  assert.equal(await plain.get('ups:n'), 42);
  assert.equal(await upstashKV(plain, { prefix: 'ups:' }).get('n'), '42');
});

test('Upstash: TTLs, set-if-absent, and one database shared with TCP clients of redisKV', async () => {
  const { Redis } = await fromConsumer('@upstash/redis');
  const { upstashKV } = await fromConsumer('autopay-auth/upstash');
  const { redisKV } = await fromConsumer('autopay-auth/redis');
  const { createClient } = await import(redisModule);
  const tcp = await createClient({ url: redisUrl }).connect();
  try {
    const kv = upstashKV(new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false }), { prefix: 'mix:' });
    assert.equal(kv.minExpirationTtl, 1);
    assert.equal(await kv.get('absent'), null);
    await kv.put('short', 'v', { expirationTtl: 5 });
    const ttl = Number(await tcp.sendCommand(['TTL', 'mix:short']));
    assert.ok(ttl > 0 && ttl <= 5, String(ttl));
    assert.equal(await kv.putIfAbsent('lock', 'a', { ttlMs: 5_000 }), true);
    assert.equal(await kv.putIfAbsent('lock', 'b', { ttlMs: 5_000 }), false);
    const pttl = Number(await tcp.sendCommand(['PTTL', 'mix:lock']));
    assert.ok(pttl > 4_000 && pttl <= 5_000, String(pttl));
    await kv.delete('lock');
    assert.equal(await kv.putIfAbsent('lock', 'c', { ttlMs: 5_000 }), true);
    // the same bytes under the same keys as the TCP adapter: either reads what the other wrote
    const overTcp = redisKV(tcp, { prefix: 'mix:' });
    for (const v of AWKWARD) {
      await overTcp.put('shared', v, { expirationTtl: 60 });
      assert.equal(await kv.get('shared'), v);
      await kv.put('shared', v, { expirationTtl: 60 });
      assert.equal(await overTcp.get('shared'), v);
    }
    assert.equal(await overTcp.putIfAbsent('lock', 'd', { ttlMs: 5_000 }), false, 'one lock for both');
  } finally {
    await tcp.quit();
  }
});

test('Upstash: a wrong token is an error from every call; what is not a Redis instance is refused', async () => {
  const { Redis } = await fromConsumer('@upstash/redis');
  const { upstashKV } = await fromConsumer('autopay-auth/upstash');
  const before = standIn.counts.unauthorized;
  const kv = upstashKV(new Redis({ url: standIn.url, token: 'wrong', enableTelemetry: false, retry: false }));
  await assert.rejects(kv.get('k'), /Unauthorized/);
  await assert.rejects(kv.putIfAbsent('k', 'v', { ttlMs: 1_000 }), /Unauthorized/);
  assert.equal(standIn.counts.unauthorized, before + 2);
  for (const bad of [null, {}, { get: async () => null }, 'redis://x']) {
    assert.throws(() => upstashKV(bad), { name: 'TypeError', message: /an @upstash\/redis Redis instance is required/ });
  }
});

test('DynamoDB: values round-trip, the TTL attribute is set in seconds, and expired items are misses before DynamoDB deletes them', async () => {
  const { DynamoDBClient } = await fromConsumer('@aws-sdk/client-dynamodb');
  const { dynamoKV } = await fromConsumer('autopay-auth/dynamodb');
  await dynamo.createTable('adapter-test');
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  try {
    const kv = dynamoKV(client, { table: 'adapter-test', prefix: 'app:' });
    assert.equal(kv.minExpirationTtl, 1);
    assert.equal(await kv.get('k'), null);
    for (const v of AWKWARD) {
      await kv.put('k', v, { expirationTtl: 120 });
      assert.equal(await kv.get('k'), v);
    }
    const [item] = await dynamo.values('adapter-test');
    assert.equal(item.key, 'app:k');
    const left = item.expiresAt - Date.now() / 1000;
    assert.ok(left > 115 && left <= 121, `expiresAt is epoch seconds: ${left} s left`);
    // set-if-absent, and a lock whose time is up is taken again though the item is still there
    assert.equal(await kv.putIfAbsent('lock', 'minting', { ttlMs: 1_000 }), true);
    assert.equal(await kv.putIfAbsent('lock', 'minting', { ttlMs: 1_000 }), false);
    await kv.put('brief', 'x', { expirationTtl: 1 });
    await new Promise((r) => setTimeout(r, 2_100));
    const still = (await dynamo.values('adapter-test')).map((i) => i.key).sort();
    assert.deepEqual(still, ['app:brief', 'app:k', 'app:lock'], 'not deleted yet (DynamoDB deletes late)');
    assert.equal(await kv.get('brief'), null, 'but expired: a miss');
    assert.equal(await kv.putIfAbsent('lock', 'minting', { ttlMs: 1_000 }), true, 'an expired lock is free');
    await kv.delete('lock');
    assert.equal(await kv.get('lock'), null);
    // a missing table fails every call, by name
    await assert.rejects(dynamoKV(client, { table: 'no-such-table' }).get('k'), { name: 'ResourceNotFoundException' });
    assert.throws(() => dynamoKV(client, {}), { name: 'TypeError', message: /table must be a non-empty string/ });
    assert.throws(() => dynamoKV({ get: () => {} }, { table: 't' }), { name: 'TypeError', message: /DynamoDBClient/ });
  } finally {
    client.destroy();
  }
});

test('the shortest TTL is the store\'s: a 30 s token is shared through Upstash and DynamoDB, kept in memory over Workers KV', async (t) => {
  const { AutopayAuth, MemoryKV } = await fromConsumer('autopay-auth');
  const { Redis } = await fromConsumer('@upstash/redis');
  const { upstashKV } = await fromConsumer('autopay-auth/upstash');
  const { DynamoDBClient } = await fromConsumer('@aws-sdk/client-dynamodb');
  const { dynamoKV } = await fromConsumer('autopay-auth/dynamodb');
  await dynamo.createTable('short-tokens');
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  t.after(() => client.destroy());
  const stores = {
    upstash: () => upstashKV(new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false }), { prefix: 'short:' }),
    dynamodb: () => dynamoKV(client, { table: 'short-tokens' }),
  };
  const make = (kv) => new AutopayAuth({ clientId: 'runtime-client', clientSecret: 'runtime-secret', tokenUrl: emu.tokenUrl, kv, logger: null });
  for (const [name, store] of Object.entries(stores)) {
    await emu.post('/__emulator/reset');
    await emu.post('/__emulator/config', { expiresIn: 30 });
    const first = await make(store()).getTokenInfo();
    const second = await make(store()).getTokenInfo(); // another instance: no memory shared
    assert.deepEqual([first.source, second.source, second.accessToken === first.accessToken], ['network', 'kv', true], name);
    assert.equal(emu.stats().tokenRequests, 1, name);
  }
  // a store that says nothing is taken for Workers KV (no TTL under 60 s): memory only
  await emu.post('/__emulator/reset');
  await emu.post('/__emulator/config', { expiresIn: 30 });
  const kv = new MemoryKV();
  await make(kv).getTokenInfo();
  assert.equal((await make(kv).getTokenInfo()).source, 'network');
  assert.equal(emu.stats().tokenRequests, 2);
  assert.deepEqual((await kv.list()).keys.filter((k) => !k.name.endsWith(':fleet')), [], 'no record written');
  // a declared minimum must be whole seconds from 1 to 86400: a typed error naming it
  for (const minExpirationTtl of [0, 1.5, '1', 86_401]) {
    assert.throws(
      () => make({ get: async () => null, put: async () => {}, delete: async () => {}, minExpirationTtl }),
      (e) => e.code === 'invalid_config' && e.option === 'kv.minExpirationTtl' && /whole number of seconds from 1 to 86400/.test(e.message),
      String(minExpirationTtl),
    );
  }
});

test('CommonJS: require() gives the same adapters, the peers required from the user\'s project', () => {
  const require = createRequire(join(dir, 'package.json'));
  const { upstashKV } = require('autopay-auth/upstash');
  const { dynamoKV } = require('autopay-auth/dynamodb');
  const { Redis } = require('@upstash/redis');
  const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  try {
    const kvs = [upstashKV(new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false })), dynamoKV(client, { table: 'tokens' })];
    for (const kv of kvs) {
      assert.deepEqual(Object.keys(kv).sort(), ['delete', 'deleteIf', 'get', 'minExpirationTtl', 'put', 'putIfAbsent']);
      assert.equal(kv.minExpirationTtl, 1);
    }
  } finally {
    client.destroy();
  }
});

test('Redis: node-redis and ioredis, single-node clients and cluster clients, all through redisKV', async (t) => {
  const cluster = await startRedis(scratch, { cluster: true });
  t.after(() => cluster.stop());
  const { createClient, createCluster } = await import(redisModule);
  const { default: IORedis, Cluster } = await import(pathToFileURL(createRequire(join(root, 'package.json')).resolve('ioredis')).href);
  const { redisKV } = await fromConsumer('autopay-auth/redis');
  const node = { host: '127.0.0.1', port: cluster.port };
  const clients = {
    'node-redis createClient': async () => createClient({ url: cluster.url }).on('error', () => {}).connect(),
    'node-redis createCluster': async () => createCluster({ rootNodes: [{ url: cluster.url }] }).on('error', () => {}).connect(),
    'ioredis Redis': async () => new IORedis(node),
    'ioredis Cluster': async () => new Cluster([node]),
  };
  for (const [name, connect] of Object.entries(clients)) {
    const client = await connect();
    try {
      const kv = redisKV(client, { prefix: `${name.replace(/\W/g, '-')}:` });
      for (const v of AWKWARD) {
        await kv.put('k', v, { expirationTtl: 60 });
        assert.equal(await kv.get('k'), v, `${name}: ${v}`);
      }
      assert.equal(await kv.putIfAbsent('lock', 'a', { ttlMs: 5_000 }), true, name);
      assert.equal(await kv.putIfAbsent('lock', 'b', { ttlMs: 5_000 }), false, name);
      await kv.delete('lock');
      assert.equal(await kv.get('lock'), null, name);
    } finally {
      await (client.quit?.() ?? client.disconnect?.());
    }
  }
  assert.throws(() => redisKV({ get: async () => null }), { name: 'TypeError', message: /node-redis or ioredis/ });
});

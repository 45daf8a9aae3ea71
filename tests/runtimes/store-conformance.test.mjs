// The store contract (`autopay-auth/conformance`, from the packed package) against every adapter
// and its real backend: redis-server through a proxy that delays every chunk 0–80 ms (node-redis
// and ioredis, a single node and a cluster), the Upstash stand-in over the same redis-server,
// DynamoDB (dynalite) behind the same kind of proxy, Deno KV in a Deno process, and MemoryKV.
// And the other way round: stores that break the contract are caught, each by its rule.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { consumer, run, bin, startDynamo, startPostgres, startRedis, root } from './helpers.mjs';
import { latencyProxy } from './latency-proxy.mjs';
import { upstashStandIn } from './upstash-standin.mjs';

let dir, scratch, redis, cluster, proxy, standIn, dynamo, dynamoProxy, pg, pgProxy;
const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;

before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-auth-conformance-'));
  redis = await startRedis(scratch);
  cluster = await startRedis(scratch, { cluster: true });
  proxy = await latencyProxy({ host: '127.0.0.1', port: redis.port }, { maxDelayMs: 80 });
  standIn = await upstashStandIn({ redisUrl: redis.url, redisModule, token: 'conformance-token' });
  dynamo = await startDynamo();
  dynamoProxy = await latencyProxy({ host: '127.0.0.1', port: dynamo.port }, { maxDelayMs: 80 });
  pg = await startPostgres();
  pgProxy = await latencyProxy({ host: '127.0.0.1', port: pg.port }, { maxDelayMs: 80 });
});

after(async () => {
  await standIn?.close();
  await dynamoProxy?.close();
  await dynamo?.close();
  await pgProxy?.close();
  pg?.stop();
  await proxy?.close();
  cluster?.stop();
  redis?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function fromConsumer(spec) {
  const file = join(dir, `reexport-${spec.replace(/\W/g, '_')}.mjs`);
  writeFileSync(file, `export * from '${spec}';\n`);
  return import(pathToFileURL(file).href);
}

// shape, values, delete, 1 s TTLs, 50 claimers, lock expiry, compare-and-delete
const LOCKING_RULES = 7;

test('every adapter keeps the store contract against its real backend, 50 claimers at once', { timeout: 240_000 }, async (t) => {
  const { checkStore } = await fromConsumer('autopay-auth/conformance');
  const { redisKV } = await fromConsumer('autopay-auth/redis');
  const { upstashKV } = await fromConsumer('autopay-auth/upstash');
  const { dynamoKV } = await fromConsumer('autopay-auth/dynamodb');
  const { postgresKV } = await fromConsumer('autopay-auth/postgres');
  const pgModule = await import(pathToFileURL(createRequire(join(root, 'package.json')).resolve('pg')).href);
  const { default: postgres } = await import(pathToFileURL(createRequire(join(root, 'package.json')).resolve('postgres')).href);
  const pgUrl = `postgres://postgres@127.0.0.1:${pgProxy.port}/postgres`;
  const { MemoryKV } = await fromConsumer('autopay-auth');
  const { Redis } = await fromConsumer('@upstash/redis');
  const { DynamoDBClient } = await fromConsumer('@aws-sdk/client-dynamodb');
  const { createClient, createCluster } = await import(redisModule);
  const ioredisUrl = pathToFileURL(createRequire(join(root, 'package.json')).resolve('ioredis')).href;
  const { default: IORedis, Cluster } = await import(ioredisUrl);
  await dynamo.createTable('conformance');
  const delayed = { host: '127.0.0.1', port: proxy.port };
  const dynamoClient = () => new DynamoDBClient({ endpoint: `http://127.0.0.1:${dynamoProxy.port}`, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  // each: the store, and how to let its client go at once (no graceful quit to wait for)
  const stores = {
    'redisKV (node-redis), 0–80 ms away': async () => {
      const c = await createClient({ url: `redis://127.0.0.1:${proxy.port}` }).on('error', () => {}).connect();
      return [redisKV(c), () => c.destroy()];
    },
    'redisKV (ioredis), 0–80 ms away': async () => {
      const c = new IORedis(delayed);
      return [redisKV(c), () => c.disconnect()];
    },
    'redisKV (node-redis cluster)': async () => {
      const c = await createCluster({ rootNodes: [{ url: cluster.url }] }).on('error', () => {}).connect();
      return [redisKV(c), () => c.destroy()];
    },
    'redisKV (ioredis cluster)': async () => {
      const c = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
      return [redisKV(c), () => c.disconnect()];
    },
    'upstashKV (REST stand-in)': async () => [upstashKV(new Redis({ url: standIn.url, token: standIn.token, enableTelemetry: false })), () => {}],
    'postgresKV (node-postgres Pool), 0–80 ms away': async () => {
      const pool = new pgModule.default.Pool({ connectionString: pgUrl, max: 10 });
      return [postgresKV(pool, { createTable: true, prefix: 'pg:' }), () => pool.end()];
    },
    'postgresKV (postgres.js), 0–80 ms away': async () => {
      const sql = postgres(pgUrl, { max: 10, onnotice: () => {} });
      return [postgresKV(sql, { createTable: true, prefix: 'js:' }), () => sql.end({ timeout: 0 })];
    },
    'dynamoKV (dynalite), 0–80 ms away': async () => {
      const c = dynamoClient();
      return [dynamoKV(c, { table: 'conformance' }), () => c.destroy()];
    },
  };
  for (const [name, make] of Object.entries(stores)) {
    const started = Date.now();
    const [kv, close] = await make();
    try {
      const kept = await checkStore(kv);
      t.diagnostic(`${name}: ${kept.length} rules kept in ${Date.now() - started} ms`);
      assert.equal(kept.length, LOCKING_RULES, `${name}: ${kept.join('; ')}`);
    } finally {
      await close();
    }
  }
  // Workers KV's shape (no lock, 60 s TTLs), with compare-and-delete: the rules that apply to it
  const kept = await checkStore(new MemoryKV());
  assert.equal(kept.length, 4, kept.join('; '));
});

test('Deno KV keeps the store contract, in a Deno process', async () => {
  const script = join(dir, 'conformance-deno.mjs');
  writeFileSync(
    script,
    `import { checkStore } from 'autopay-auth/conformance';
import { denoKV } from 'autopay-auth/deno-kv';
const db = await Deno.openKv(${JSON.stringify(join(scratch, 'conformance.kv'))});
console.log(JSON.stringify(await checkStore(denoKV(db))));
db.close();
`,
  );
  const out = await run(bin('deno'), ['run', '--no-prompt', '--unstable-kv', '--allow-read', '--allow-write', script], { cwd: dir });
  const kept = JSON.parse(out.trim().split('\n').pop());
  assert.equal(kept.length, LOCKING_RULES, kept.join('; '));
});

test('a store that breaks the contract is caught, by the rule it breaks', async () => {
  const { checkStore } = await fromConsumer('autopay-auth/conformance');
  const { MemoryKV } = await fromConsumer('autopay-auth');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  /** A store over a Map, 0–20 ms away, whose lock is whatever `lock` makes of it. */
  const store = (lock = {}) => {
    const m = new Map();
    const live = (k) => {
      const e = m.get(k);
      return e && e.until > Date.now() ? e : undefined;
    };
    const away = async () => sleep(Math.random() * 20);
    return {
      minExpirationTtl: 1,
      async get(k) {
        await away();
        return live(k)?.v ?? null;
      },
      async put(k, v, { expirationTtl }) {
        await away();
        m.set(k, { v, until: Date.now() + expirationTtl * 1000 });
      },
      async delete(k) {
        await away();
        m.delete(k);
      },
      async putIfAbsent(k, v, { ttlMs }) {
        if (lock.getThenSet) {
          // read, then write: not atomic
          const held = await this.get(k);
          if (held !== null) return false;
          await away();
          m.set(k, { v, until: Date.now() + ttlMs });
          return true;
        }
        if (live(k)) return false;
        m.set(k, { v, until: Date.now() + ttlMs });
        return true;
      },
      async deleteIf(k, expected) {
        if (lock.unfenced) {
          const had = m.delete(k);
          return had;
        }
        if (live(k)?.v !== expected) return false;
        m.delete(k);
        return true;
      },
    };
  };
  assert.equal((await checkStore(store())).length, LOCKING_RULES, 'the honest one passes');
  const broken = [
    [store({ getThenSet: true }), 'exclusive claim'],
    [store({ unfenced: true }), 'fenced release'],
    [{ ...store(), deleteIf: undefined }, 'shape'],
    [Object.assign(new MemoryKV(), { get: async () => 'always' }), 'byte for byte'],
  ];
  for (const [kv, rule] of broken) {
    await assert.rejects(checkStore(kv), (e) => e.name === 'StoreContractError' && e.rule === rule, rule);
  }
});

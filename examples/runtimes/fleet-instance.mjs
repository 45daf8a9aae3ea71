// One instance of a fleet, as a user runs it: its own AutopayAuth on a shared store, with no
// memory shared with the others — Redis, Upstash (over HTTP) or DynamoDB under Node, Deno KV or
// Upstash under Deno, or a Vercel Edge Function (the vercel-edge example, bundled) in its own
// Edge Runtime VM. It connects, says `ready`, waits for `go` on stdin (so the fleet bursts at one
// instant), makes its burst of calls, then (with `steadyMs`) keeps calling every few hundred
// ms, and prints what it got as one JSON line.
//   node fleet-instance.mjs '{"store":"redis","tokenUrl":…,"redisUrl":…,"redisModule":…,"calls":10,…}'
//   node fleet-instance.mjs '{"store":"upstash","upstash":{"url":…,"token":…},…}'
//   node fleet-instance.mjs '{"store":"dynamodb","dynamodb":{"endpoint":…,"table":…},…}'
//   node fleet-instance.mjs '{"edge":{"code":…,"wasm":…,"module":…,"env":{…}},…}'
//   deno run … fleet-instance.mjs '{"store":"deno-kv","denoKv":"/path/db.sqlite","delayMs":80,…}'
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import process from 'node:process';

const cfg = JSON.parse(globalThis.Deno ? Deno.args[0] : process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (max) => Math.random() * max;

/** Each store as its users wire it: `{ kv, close }`. */
const stores = {
  async redis() {
    const { redisKV } = await import('autopay-auth/redis');
    const { createClient } = await import(cfg.redisModule);
    const client = createClient({ url: cfg.redisUrl, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 500) } });
    client.on('error', () => {}); // the store going away is survived (and counted in stats)
    await client.connect();
    return { kv: redisKV(client), close: () => client.disconnect().catch(() => {}) };
  },
  async 'deno-kv'() {
    const { denoKV } = await import('autopay-auth/deno-kv');
    const db = await Deno.openKv(cfg.denoKv);
    // a store milliseconds away: every call takes a random delay, half each way
    const far = (op) => async (...args) => {
      await sleep(jitter(cfg.delayMs / 2));
      try {
        return await op(...args);
      } finally {
        await sleep(jitter(cfg.delayMs / 2));
      }
    };
    const near = denoKV(db);
    const kv = Object.fromEntries(Object.entries(near).map(([k, v]) => [k, typeof v === 'function' ? far(v) : v]));
    return { kv, close: () => db.close() };
  },
  async upstash() {
    const { Redis } = await import('@upstash/redis');
    const { upstashKV } = await import('autopay-auth/upstash');
    const redis = new Redis({ url: cfg.upstash.url, token: cfg.upstash.token, enableTelemetry: false });
    return { kv: upstashKV(redis), close: () => {} };
  },
  async dynamodb() {
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const { dynamoKV } = await import('autopay-auth/dynamodb');
    const { endpoint, table } = cfg.dynamodb;
    const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'fleet', secretAccessKey: 'fleet' } });
    return { kv: dynamoKV(client, { table }), close: () => client.destroy() };
  },
};

/** `call()` → `{ accessToken?, expiresAt }`; `stats()`, when this instance can see them. */
async function client() {
  if (cfg.edge) {
    // the Vercel Edge example in its own VM, its wasm compiled outside (as the platform does)
    const { EdgeRuntime } = await import(cfg.edge.module);
    const wasm = new WebAssembly.Module(readFileSync(cfg.edge.wasm));
    const runtime = new EdgeRuntime({
      codeGeneration: { strings: false, wasm: false },
      initialCode: readFileSync(cfg.edge.code, 'utf8'),
      extend(context) {
        context.__wasm_autopay_auth = wasm;
        context.process = { env: cfg.edge.env };
        return context;
      },
    });
    const call = async () => {
      const res = await runtime.dispatchFetch('https://edge.test/');
      const body = await res.text();
      if (res.status !== 200) throw Object.assign(new Error(body), { code: `http_${res.status}` });
      return JSON.parse(body);
    };
    return { call, stats: () => null, close: () => {} };
  }
  const { AutopayAuth } = await import('autopay-auth');
  const { kv, close } = await stores[cfg.store ?? 'redis']();
  const auth = new AutopayAuth({
    clientId: 'runtime-client',
    clientSecret: 'runtime-secret',
    tokenUrl: cfg.tokenUrl,
    kv,
    logger: null,
    ...cfg.options,
  });
  return { call: () => auth.getTokenInfo(), stats: () => auth.stats(), close };
}

const { call, stats, close } = await client();
const lines = createInterface({ input: process.stdin });
console.log('ready');
await new Promise((go) => lines.on('line', (l) => l.trim() === 'go' && go()));
lines.close();

const tokens = new Set();
const errors = [];
let served = 0;
let expired = 0;
/** One call: what it served (a token is known by its expiry where the instance cannot see it). */
async function once() {
  try {
    const info = await call();
    served++;
    tokens.add(info.accessToken ?? `expires:${info.expiresAt}`);
    if (!(info.expiresAt > Date.now())) expired++;
  } catch (e) {
    errors.push(e?.code ?? String(e));
  }
}
for (let round = 0; round < (cfg.rounds ?? 1); round++) {
  if (round > 0) await sleep(cfg.roundGapMs ?? 0);
  await sleep(jitter(cfg.spreadMs ?? 0));
  await Promise.all(Array.from({ length: cfg.calls ?? 10 }, once));
}
// the steady phase: a call every 0–everyMs, across the refresh points
for (const until = Date.now() + (cfg.steadyMs ?? 0); Date.now() < until; ) {
  await sleep(jitter(cfg.everyMs ?? 400));
  await once();
}
console.log(JSON.stringify({ tokens: [...tokens], served, expired, errors, stats: stats() }));
await close();
process.exit(0);

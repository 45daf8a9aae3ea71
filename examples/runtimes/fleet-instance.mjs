// One instance of a fleet, as a user runs it: its own AutopayAuth on a shared store — Redis
// under Node, Deno KV under Deno — with no memory shared with the others. It connects, says
// `ready`, waits for `go` on stdin (so the fleet bursts at one instant), then makes its calls
// and prints what it got as one JSON line.
//   node fleet-instance.mjs '{"tokenUrl":…,"redisUrl":…,"redisModule":…,"calls":10,"rounds":1,…}'
//   deno run … fleet-instance.mjs '{"tokenUrl":…,"denoKv":"/path/db.sqlite","delayMs":80,…}'
import { createInterface } from 'node:readline';
import process from 'node:process';
import { AutopayAuth } from 'autopay-auth';

const cfg = JSON.parse(process.argv[2] ?? Deno.args[0]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (max) => Math.random() * max;

let kv;
let close;
if (cfg.denoKv) {
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
  kv = Object.fromEntries(Object.entries(near).map(([k, f]) => [k, far(f)]));
  close = () => db.close();
} else {
  const { redisKV } = await import('autopay-auth/redis');
  const { createClient } = await import(cfg.redisModule);
  const client = createClient({ url: cfg.redisUrl, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 500) } });
  client.on('error', () => {}); // the store going away is survived (and counted in stats)
  await client.connect();
  kv = redisKV(client);
  close = () => client.disconnect().catch(() => {});
}

const auth = new AutopayAuth({
  clientId: 'runtime-client',
  clientSecret: 'runtime-secret',
  tokenUrl: cfg.tokenUrl,
  kv,
  logger: null,
  ...cfg.options,
});

const lines = createInterface({ input: process.stdin });
console.log('ready');
await new Promise((go) => lines.on('line', (l) => l.trim() === 'go' && go()));
lines.close();

const tokens = [];
const errors = [];
for (let round = 0; round < (cfg.rounds ?? 1); round++) {
  if (round > 0) await sleep(cfg.roundGapMs ?? 0);
  await sleep(jitter(cfg.spreadMs ?? 0));
  const results = await Promise.allSettled(Array.from({ length: cfg.calls ?? 10 }, () => auth.getToken()));
  for (const r of results) {
    if (r.status === 'fulfilled') tokens.push(r.value);
    else errors.push(r.reason?.code ?? String(r.reason));
  }
}
console.log(JSON.stringify({ tokens: [...new Set(tokens)], served: tokens.length, errors, stats: auth.stats() }));
await close();
process.exit(0);

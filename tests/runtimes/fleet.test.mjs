// Real fleets: separate processes, each with its own client and no shared memory, on one store
// that is milliseconds away — a real redis-server behind a proxy that delays every call by a
// random 0–80 ms, and Deno KV whose every call is delayed the same way. The burst comes at one
// instant (every process is told `go` at once) or spread over 1.5 s, repeated. Then the faults:
// the lock holder killed mid-mint, a 429 seen by one process, the store down.
// Then the stores fleets have on the platforms: Upstash Redis over HTTP — from Node processes,
// Deno processes and Vercel Edge Runtime VMs (the vercel-edge example, one VM per process) —
// and DynamoDB from Node processes, each with 8 s tokens: cold bursts mint once, and a steady
// phase across two refresh points mints once per refresh, serves nothing expired, and leaves
// nothing readable in the store. Upstash cannot be reached offline: a stand-in speaking its
// REST protocol over the same redis-server serves it (upstash-standin.mjs), 0–80 ms away;
// DynamoDB is dynalite (DynamoDB's API on LevelDB) behind the latency proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleVercelEdge, consumer, bin, startDynamo, startEmulator, startPostgres, startRedis, root } from './helpers.mjs';
import { latencyProxy } from './latency-proxy.mjs';
import { upstashStandIn } from './upstash-standin.mjs';

const PROCESSES = 20;
// tests/native_fleet/instance.rs, built by `cargo build --features native --examples` (scripts/test.sh)
const rustInstance = join(root, 'target', 'debug', 'examples', 'fleet_instance');
let emu, dir, redis, proxy, scratch, upstash, dynamo, dynamoProxy, edgeCode, pg, pgProxy, pgAdmin;
const resolve = (name) => pathToFileURL(createRequire(join(root, 'package.json')).resolve(name)).href;
const redisModule = resolve('redis');
const pgModule = resolve('pg');
const postgresJsModule = resolve('postgres');

before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-auth-fleet-'));
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  redis = await startRedis(scratch);
  proxy = await latencyProxy({ host: '127.0.0.1', port: redis.port }, { maxDelayMs: 80 });
  upstash = await upstashStandIn({ redisUrl: redis.url, redisModule, token: 'fleet-upstash-token', delayMs: 80 });
  dynamo = await startDynamo();
  dynamoProxy = await latencyProxy({ host: '127.0.0.1', port: dynamo.port }, { maxDelayMs: 80 });
  pg = await startPostgres();
  pgProxy = await latencyProxy({ host: '127.0.0.1', port: pg.port }, { maxDelayMs: 80 });
  const { default: pgLib } = await import(pgModule);
  pgAdmin = new pgLib.Pool({ connectionString: pg.url, max: 2 }); // the test's own, not 0–80 ms away
  const { code, wasm } = await bundleVercelEdge(dir);
  edgeCode = { code: join(scratch, 'vercel-edge.js'), wasm: join(scratch, 'autopay_auth_bg.wasm') };
  writeFileSync(edgeCode.code, code);
  writeFileSync(edgeCode.wasm, wasm);
});

after(async () => {
  await proxy?.close();
  await upstash?.close();
  await dynamoProxy?.close();
  await dynamo?.close();
  await pgAdmin?.end();
  await pgProxy?.close();
  pg?.stop();
  redis?.stop();
  await emu?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** One fleet instance: a separate process; `ready` once connected, `done` with its report. */
function instance(cfg, runtime = 'node') {
  const args =
    runtime === 'deno'
      ? ['run', '--no-prompt', '--unstable-kv', '--allow-env', // @upstash/redis reads its own settings from the environment
         `--allow-net=${new URL(emu.origin).host},${new URL(upstash.url).host}`,
         `--allow-read=${dir},${join(root, 'node_modules')},${scratch}`, `--allow-write=${scratch}`,
         'fleet-instance.mjs', JSON.stringify(cfg)]
      : runtime === 'rust'
        ? [JSON.stringify(cfg)] // the native client's instance
        : ['fleet-instance.mjs', JSON.stringify(cfg)];
  const cmd = runtime === 'deno' ? bin('deno') : runtime === 'bun' ? bin('bun') : runtime === 'rust' ? rustInstance : process.execPath;
  const child = spawn(cmd, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout });
  let report;
  const ready = new Promise((resolve, reject) => {
    lines.on('line', (l) => {
      if (l === 'ready') resolve();
      else if (l.startsWith('{')) report = JSON.parse(l);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
  });
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    // 'close', not 'exit': the last line of stdout may still be unread when the process exits
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (report) resolve(report);
      else reject(new Error(`no report (exit ${code ?? signal}): ${stderr}`));
    });
  });
  ready.catch(() => {});
  done.catch(() => {});
  return { child, ready, done, go: () => child.stdin.write('go\n') };
}

/** A fleet of `n` instances: started, all connected, then told `go` at one instant. */
async function fleet(n, cfg, runtime) {
  const all = Array.from({ length: n }, () => instance(cfg, runtime));
  await Promise.all(all.map((i) => i.ready));
  for (const i of all) i.go();
  return Promise.all(all.map((i) => i.done));
}

/** Half Rust, half Node instances on `cfg`, all connected, then told `go` at one instant: the
 * run's summary, whether the Node processes' bursts overlapped, what the Rust ones served. */
async function mixedRun(cfg, spreadMs) {
  const all = [
    ...Array.from({ length: PROCESSES / 2 }, () => instance(cfg, 'rust')),
    ...Array.from({ length: PROCESSES / 2 }, () => instance(cfg, 'node')),
  ];
  await Promise.all(all.map((i) => i.ready));
  for (const i of all) i.go();
  const reports = await Promise.all(all.map((i) => i.done));
  const rust = reports.filter((r) => r.runtime === 'rust');
  const node = reports.filter((r) => r.runtime !== 'rust');
  return { spreadMs, ...summary(reports), overlapped: overlapped(node), rustServed: rust.reduce((n, r) => n + r.served, 0), tokenRequests: emu.stats().tokenRequests };
}

const redisCfg = (extra = {}) => ({ tokenUrl: emu.tokenUrl, redisUrl: proxy.url, redisModule, calls: 10, ...extra });

async function fresh() {
  await emu.post('/__emulator/reset');
  await redis.cli('flushall');
}

/** Whether every instance's burst was under way at one moment: the latest start before the
 * earliest end (a fleet whose instances ran one after another proves nothing). */
const overlapped = (reports) => {
  const windows = reports.map((r) => r.window).filter(Boolean);
  return windows.length === reports.length && Math.max(...windows.map((w) => w[0])) < Math.min(...windows.map((w) => w[1]));
};

const summary = (reports) => ({
  tokens: new Set(reports.flatMap((r) => r.tokens)).size,
  served: reports.reduce((n, r) => n + r.served, 0),
  errors: reports.flatMap((r) => r.errors),
  mints: reports.reduce((n, r) => n + (r.stats?.mints ?? 0), 0),
  expired: reports.reduce((n, r) => n + r.expired, 0),
});

test(`Redis behind 0–80 ms: ${PROCESSES} processes, bursts at one instant and spread over 1.5 s, mint once every run`, { timeout: 240_000 }, async () => {
  const outcomes = [];
  for (const spreadMs of [0, 0, 0, 0, 1_500, 1_500]) {
    await fresh();
    const reports = await fleet(PROCESSES, redisCfg({ spreadMs }));
    outcomes.push({ spreadMs, ...summary(reports), overlapped: overlapped(reports), tokenRequests: emu.stats().tokenRequests });
  }
  console.log('# redis fleet runs:', JSON.stringify(outcomes));
  for (const o of outcomes) {
    assert.deepEqual(
      { tokens: o.tokens, tokenRequests: o.tokenRequests, errors: o.errors.length, served: o.served },
      { tokens: 1, tokenRequests: 1, errors: 0, served: PROCESSES * 10 },
      JSON.stringify(o),
    );
    // at one instant, every process's calls were under way together: the race was real
    if (o.spreadMs === 0) assert.ok(o.overlapped, `the processes' bursts overlapped: ${JSON.stringify(o)}`);
  }
});


/** A mixed Rust and Node run: one token, one token request and one mint for the whole fleet,
 * no caller failed, every call served, the Rust half's too. */
function assertMixedOutcome(o) {
  assert.deepEqual(
    { tokens: o.tokens, tokenRequests: o.tokenRequests, mints: o.mints, errors: o.errors.length, served: o.served, rustServed: o.rustServed },
    { tokens: 1, tokenRequests: 1, mints: 1, errors: 0, served: PROCESSES * 10, rustServed: (PROCESSES / 2) * 10 },
    JSON.stringify(o),
  );
}

test(`a mixed fleet: ${PROCESSES / 2} Rust and ${PROCESSES / 2} Node processes on one Redis 0–80 ms away mint once every run`, { timeout: 240_000 }, async () => {
  assert.ok(existsSync(rustInstance), `build it first: cargo build --features native --examples (${rustInstance})`);
  const outcomes = [];
  for (const spreadMs of [0, 0, 0, 1_500]) {
    await fresh();
    const cfg = redisCfg({ spreadMs });
    outcomes.push(await mixedRun(cfg, spreadMs));
  }
  console.log('# mixed rust/node fleet runs:', JSON.stringify(outcomes));
  for (const o of outcomes) {
    assertMixedOutcome(o);
    if (o.spreadMs === 0) assert.ok(o.overlapped, `the Node processes' bursts overlapped: ${JSON.stringify(o)}`);
  }
});

test(`Deno KV with 0–80 ms calls: ${PROCESSES} Deno processes, bursts and spread, mint once every run`, { timeout: 240_000 }, async () => {
  const outcomes = [];
  for (const [i, spreadMs] of [0, 0, 1_500].entries()) {
    await emu.post('/__emulator/reset');
    const db = join(scratch, `fleet-${i}.sqlite`);
    const cfg = { store: 'deno-kv', tokenUrl: emu.tokenUrl, denoKv: db, delayMs: 80, calls: 10, spreadMs };
    const reports = await fleet(PROCESSES, cfg, 'deno');
    outcomes.push({ spreadMs, ...summary(reports), overlapped: overlapped(reports), tokenRequests: emu.stats().tokenRequests });
  }
  console.log('# deno kv fleet runs:', JSON.stringify(outcomes));
  for (const o of outcomes) {
    assert.deepEqual(
      { tokens: o.tokens, tokenRequests: o.tokenRequests, errors: o.errors.length },
      { tokens: 1, tokenRequests: 1, errors: 0 },
      JSON.stringify(o),
    );
    if (o.spreadMs === 0) assert.ok(o.overlapped, `the processes' bursts overlapped: ${JSON.stringify(o)}`);
  }
});

test(`a metered vendor: a quota of 3 an hour declared the Auth0, Okta and IETF ways, 2-second tokens, ${PROCESSES} processes on Redis 0–80 ms for 10 s: at most 3 token requests`, { timeout: 240_000 }, async () => {
  const outcomes = [];
  for (const kind of ['auth0', 'okta', 'ietf', 'mintBudget']) {
    await fresh();
    emu.setExpiresIn(2);
    // the last: a vendor that declares nothing, and the fleet's own `mintBudget: '3/hour'`
    const declared = kind !== 'mintBudget';
    if (declared) await emu.post('/__emulator/config', { quota: { kind, limit: 3, windowSec: 3_600 } });
    const cfg = redisCfg({ calls: 5, steadyMs: 10_000, everyMs: 300, options: declared ? {} : { mintBudget: '3/hour' } });
    const reports = await fleet(PROCESSES, cfg);
    const s = summary(reports);
    const codes = [...new Set(s.errors)];
    outcomes.push({ kind, tokenRequests: emu.stats().tokenRequests, overQuota: emu.stats().overQuota, served: s.served, failed: s.errors.length, codes, expired: s.expired, overlapped: overlapped(reports) });
  }
  console.log('# metered vendor fleets:', JSON.stringify(outcomes));
  for (const o of outcomes) {
    assert.ok(o.tokenRequests <= 3, JSON.stringify(o));
    assert.equal(o.overQuota, 0, JSON.stringify(o));
    assert.ok(o.served > PROCESSES * 5, `served the tokens the quota allowed: ${JSON.stringify(o)}`);
    // a caller without a usable token once the quota is spent is told when to come back
    assert.deepEqual(o.codes, ['mint_budget_exhausted'], JSON.stringify(o));
    assert.equal(o.expired, 0);
    assert.ok(o.overlapped, JSON.stringify(o));
  }
});

test(`the README's Rust and Node snippets, run as written against one Redis 0–80 ms away: ${PROCESSES / 2} of each at once mint once`, { timeout: 120_000 }, async () => {
  const native = join(root, 'target', 'debug', 'examples', 'native');
  assert.ok(existsSync(native), `build it first: cargo build --features native --examples (${native})`);
  await fresh();
  // the Node snippet as the README shows it (a module of a service), in the consumer project
  // with the redis client it imports; a driver asks it for one token
  copyFileSync(join(root, 'examples', 'readme', 'redis.mts'), join(dir, 'readme-redis.mts'));
  if (!existsSync(join(dir, 'node_modules', 'redis'))) symlinkSync(join(root, 'node_modules', 'redis'), join(dir, 'node_modules', 'redis'), 'dir');
  writeFileSync(join(dir, 'readme-redis-run.mjs'), "const { auth } = await import('./readme-redis.mts');\nconst info = await auth.getTokenInfo();\nconsole.log(JSON.stringify({ source: info.source, mints: auth.stats().mints }));\nprocess.exit(0);\n");
  const env = { ...process.env, AUTOPAY_CLIENT_ID: 'runtime-client', AUTOPAY_CLIENT_SECRET: 'runtime-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_REDIS_URL: proxy.url };
  const run = (cmd, args) => new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(out.trim()) : reject(new Error(`${cmd} exited ${code}: ${err}`));
    });
  });
  emu.fault({ delayMs: 300 }); // the first token request is slow: the others find it under way
  const outputs = await Promise.all([
    ...Array.from({ length: PROCESSES / 2 }, () => run(process.execPath, ['readme-redis-run.mjs'])),
    ...Array.from({ length: PROCESSES / 2 }, () => run(native, [])),
  ]);
  console.log('# README snippets, Rust and Node on one Redis:', JSON.stringify({ tokenRequests: emu.stats().tokenRequests, outputs }));
  const node = outputs.filter((o) => o.startsWith('{')).map((o) => JSON.parse(o));
  const rust = outputs.filter((o) => !o.startsWith('{'));
  assert.equal(node.length, PROCESSES / 2);
  assert.ok(rust.every((o) => /^100 tasks: 1 distinct token\(s\), [01] mint\(s\)/.test(o)), rust.join('\n'));
  const mints = node.reduce((n, r) => n + r.mints, 0) + rust.reduce((n, o) => n + Number(/(\d) mint/.exec(o)[1]), 0);
  assert.deepEqual({ tokenRequests: emu.stats().tokenRequests, mints }, { tokenRequests: 1, mints: 1 });
});

// Short timeouts make a short minting lock: 2 × 500 ms store calls + 3 attempts of 3 s (+1 s
// bound each) with their waits (750 ms) + 2 s grace = 15.75 s.
const quick = { timeoutMs: 3_000, storeTimeoutMs: 500 };

/** The stores the lock-holder faults run on: the config of an instance, and an empty store. */
const LOCKING = {
  redis: { cfg: (extra) => redisCfg(extra), fresh: () => fresh() },
  'postgres (node-postgres)': { cfg: (extra) => pgCfg('fleet_faults', 'pg')(extra), fresh: () => freshPg('fleet_faults') },
};

for (const [storeName, { cfg: redisCfg, fresh }] of Object.entries(LOCKING))
test(`${storeName}: the lock holder killed mid-mint (SIGKILL): the waiters wait for its lock, then one mints — not each`, { timeout: 120_000 }, async () => {
  await fresh();
  emu.fault({ delayMs: 2_000 }); // the holder's token request is slow: it dies waiting for it
  const holder = instance(redisCfg({ calls: 1, options: quick }));
  const waiters = Array.from({ length: PROCESSES - 1 }, () => instance(redisCfg({ calls: 5, options: quick })));
  await Promise.all([holder, ...waiters].map((i) => i.ready));
  holder.go();
  for (let i = 0; i < 100 && emu.stats().tokenRequests === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(emu.stats().tokenRequests, 1, 'the holder asked');
  for (const w of waiters) w.go();
  await new Promise((r) => setTimeout(r, 300)); // the waiters find the lock taken
  holder.child.kill('SIGKILL');
  const started = Date.now();
  const s = summary(await Promise.all(waiters.map((w) => w.done)));
  const waited = Date.now() - started;
  console.log('# holder killed:', JSON.stringify({ ...s, waitedMs: waited, tokenRequests: emu.stats().tokenRequests }));
  assert.equal(emu.stats().tokenRequests, 2, "the dead holder's request and one more");
  assert.deepEqual({ tokens: s.tokens, errors: s.errors.length }, { tokens: 1, errors: 0 });
  // the holder took its lock about 0.3–1 s before it was killed: the waiters waited out the
  // rest of the lock's life (15.75 s), not a timer of their own, and not much longer
  assert.ok(waited > 13_000 && waited < 30_000, `waited ${waited} ms: about the lock's life (15.75 s)`);
});

for (const [storeName, { cfg: redisCfg, fresh }] of Object.entries(LOCKING))
test(`${storeName}: a lock holder paused (SIGSTOP) past its lock's life, resumed (SIGCONT) while another holds the lock, sends no token request without it`, { timeout: 120_000 }, async () => {
  await fresh();
  // the holder's request is answered 503 after 1 s, while it is stopped; the next holder's
  // request takes 2 s (inside its 3 s timeout), while the first is resumed
  emu.fault({ status: 503, delayMs: 1_000, body: { error: 'temporarily_unavailable' } }, { delayMs: 2_000 });
  const paused = instance(redisCfg({ calls: 2, options: quick }));
  const others = Array.from({ length: 5 }, () => instance(redisCfg({ calls: 5, options: quick })));
  await Promise.all([paused, ...others].map((i) => i.ready));
  paused.go();
  for (let i = 0; i < 200 && emu.stats().tokenRequests === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(emu.stats().tokenRequests, 1, 'the first holder asked');
  paused.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  try {
    // its lock (15.75 s) runs out while it is stopped; then the others come
    await new Promise((r) => setTimeout(r, 16_500));
    for (const o of others) o.go();
    for (let i = 0; i < 400 && emu.stats().tokenRequests < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(emu.stats().tokenRequests, 2, 'another process took the expired lock and asked');
  } finally {
    paused.child.kill('SIGCONT'); // while the other holder's request is still out
  }
  const resumedAfter = Date.now() - stoppedAt;
  const [first, ...rest] = await Promise.all([paused.done, ...others.map((o) => o.done)]);
  const s = summary(rest);
  console.log('# holder paused:', JSON.stringify({ resumedAfterMs: resumedAfter, tokenRequests: emu.stats().tokenRequests, first, others: s }));
  assert.ok(resumedAfter > 16_000, 'paused past its lock\'s life');
  assert.equal(emu.stats().tokenRequests, 2, 'the resumed process sent nothing beside the new holder');
  assert.deepEqual({ tokens: s.tokens, errors: s.errors.length }, { tokens: 1, errors: 0 });
  // the resumed process's own callers: its dead flight's late 503 is not their answer — they
  // asked again and were served the fleet's token
  assert.deepEqual({ errors: first.errors, served: first.served }, { errors: [], served: 2 }, JSON.stringify(first));
  assert.ok(first.tokens.every((t) => rest[0].tokens.includes(t)), JSON.stringify(first));
});

test('a 429 seen by one process keeps the whole fleet from asking until Retry-After ends', { timeout: 120_000 }, async () => {
  await fresh();
  emu.fault({ status: 429, body: { error: 'too_many_requests', error_description: 'Slow down' }, headers: { 'retry-after': '30' } });
  const first = summary(await fleet(PROCESSES, redisCfg({ calls: 3 })));
  assert.equal(emu.stats().tokenRequests, 1, 'one request for the whole fleet');
  assert.equal(first.errors.length, PROCESSES * 3);
  assert.ok(first.errors.every((c) => c === 'rate_limited'), first.errors.join());
  // a fleet started afterwards (new processes, cold memory) inside the cooldown asks nobody
  const later = summary(await fleet(PROCESSES, redisCfg({ calls: 3 })));
  console.log('# 429:', JSON.stringify({ first: first.errors.length, later: later.errors.length, tokenRequests: emu.stats().tokenRequests }));
  assert.equal(emu.stats().tokenRequests, 1, 'nobody asked during the cooldown');
  assert.ok(later.errors.length === PROCESSES * 3 && later.errors.every((c) => c === 'rate_limited'));
});

test("the store down, storeOutage 'fail': no token request at all, a typed error", { timeout: 120_000 }, async () => {
  await fresh();
  const all = Array.from({ length: 10 }, () => instance(redisCfg({ calls: 3, options: { storeOutage: 'fail', storeWaitMs: 1_000, storeTimeoutMs: 300 } })));
  await Promise.all(all.map((i) => i.ready));
  proxy.down(true);
  try {
    for (const i of all) i.go();
    const s = summary(await Promise.all(all.map((i) => i.done)));
    console.log('# store down, fail:', JSON.stringify({ errors: s.errors.length, tokenRequests: emu.stats().tokenRequests }));
    assert.equal(emu.stats().tokenRequests, 0);
    assert.equal(s.errors.length, 30);
    assert.ok(s.errors.every((c) => c === 'store_unavailable'), s.errors.join());
  } finally {
    proxy.down(false);
  }
});

test('the store down, by default: each instance mints alone at most once, however often it is asked', { timeout: 120_000 }, async () => {
  await fresh();
  const all = Array.from({ length: 10 }, () => instance(redisCfg({ calls: 5, rounds: 4, roundGapMs: 200, options: { storeTimeoutMs: 300 } })));
  await Promise.all(all.map((i) => i.ready));
  proxy.down(true);
  try {
    for (const i of all) i.go();
    const reports = await Promise.all(all.map((i) => i.done));
    const s = summary(reports);
    console.log('# store down, mint:', JSON.stringify({ ...s, errors: s.errors.length, tokenRequests: emu.stats().tokenRequests }));
    assert.equal(emu.stats().tokenRequests, 10, 'one per instance, not one per call');
    assert.ok(reports.every((r) => r.stats.mints === 1 && r.served === 20), JSON.stringify(reports.map((r) => r.stats)));
  } finally {
    proxy.down(false);
  }
});

// ---- the stores of the platforms' fleets: Upstash and DynamoDB, 8 s tokens ----

const LIFETIME_S = 8; // refreshed at 6 s (± 0.2 s of jitter); under a minute, so only a store that takes short TTLs shares it
const STEADY_MS = 15_000; // after the cold mint: refreshes near 6 s and 12 s, the next near 18 s

const upstashCfg = (extra = {}) => ({ store: 'upstash', tokenUrl: emu.tokenUrl, upstash: { url: upstash.url, token: upstash.token }, calls: 10, ...extra });
const dynamoCfg = (table) => (extra = {}) => ({
  store: 'dynamodb',
  tokenUrl: emu.tokenUrl,
  dynamodb: { endpoint: `http://127.0.0.1:${dynamoProxy.port}`, table },
  calls: 10,
  ...extra,
});
const edgeCfg = (extra = {}) => ({
  edge: {
    ...edgeCode,
    module: resolve('edge-runtime'),
    env: {
      AUTOPAY_CLIENT_ID: 'runtime-client',
      AUTOPAY_CLIENT_SECRET: 'runtime-secret',
      AUTOPAY_TOKEN_URL: emu.tokenUrl,
      // Vercel's integration's names for Upstash, as the example reads them
      KV_REST_API_URL: upstash.url,
      KV_REST_API_TOKEN: upstash.token,
    },
  },
  calls: 10,
  ...extra,
});

/** Every value the store holds, for the check that none is readable. */
async function redisValues() {
  const keys = (await redis.cli('--scan')).split('\n').filter(Boolean);
  return Promise.all(keys.map(async (k) => ({ key: k, value: (await redis.cli('get', k)).replace(/\n$/, '') })));
}

/** Two cold bursts, then a cold burst and a steady phase; every run from an empty store. */
async function platformFleet(name, n, cfgFor, runtime, { clear, values }) {
  const runs = [];
  for (const steadyMs of [0, 0, STEADY_MS]) {
    await emu.post('/__emulator/reset');
    await emu.post('/__emulator/config', { expiresIn: LIFETIME_S });
    await clear();
    const reports = await fleet(n, cfgFor({ steadyMs, everyMs: 400 }), runtime);
    const tokens = reports.flatMap((r) => r.tokens);
    runs.push({ steadyMs, ...summary(reports), tokenRequests: emu.stats().tokenRequests, stored: await values(), seen: tokens });
  }
  const shown = runs.map(({ stored, seen, ...r }) => ({ ...r, errors: r.errors.length, storedKeys: stored.length }));
  console.log(`# ${name}: ${n} instances:`, JSON.stringify(shown));
  for (const r of runs.slice(0, 2)) {
    assert.deepEqual(
      { tokens: r.tokens, tokenRequests: r.tokenRequests, errors: r.errors, expired: r.expired, served: r.served },
      { tokens: 1, tokenRequests: 1, errors: [], expired: 0, served: n * 10 },
      `a cold burst mints once: ${JSON.stringify(shown)}`,
    );
  }
  const steady = runs[2];
  assert.deepEqual(
    { tokenRequests: steady.tokenRequests, tokens: steady.tokens, errors: steady.errors, expired: steady.expired },
    { tokenRequests: 3, tokens: 3, errors: [], expired: 0 },
    `one mint, then one per refresh interval, nothing expired served: ${JSON.stringify(shown)}`,
  );
  for (const r of runs) {
    assert.ok(r.stored.length > 0, 'the fleet shared the record through the store');
    for (const { key, value } of r.stored) {
      const leaks = ['runtime-secret', ...r.seen].filter((t) => value.includes(t) || key.includes(t));
      assert.deepEqual(leaks, [], `nothing readable under ${key}`);
      assert.ok(value.startsWith('v2.') || value === 'minting', `sealed: ${key} = ${value.slice(0, 12)}…`);
    }
  }
  return runs;
}

const UPSTASH = { clear: () => redis.cli('flushall'), values: redisValues };

/** An instance on Postgres 0–80 ms away, through `client` (`pg` or `postgres.js`). */
const pgCfg = (table, client) => (extra = {}) => ({
  store: 'postgres',
  tokenUrl: emu.tokenUrl,
  postgres: { url: `postgres://postgres@127.0.0.1:${pgProxy.port}/postgres`, table, client, module: client === 'pg' ? pgModule : postgresJsModule },
  calls: 10,
  ...extra,
});
/** An empty `table` (made as a user's migration would), and the emulator reset. */
async function freshPg(table) {
  await emu.post('/__emulator/reset');
  await emptyPg(table);
}
async function emptyPg(table) {
  await pgAdmin.query(`DROP TABLE IF EXISTS ${table}`);
  await pgAdmin.query(`CREATE TABLE ${table} (key text PRIMARY KEY, value text NOT NULL, expires_at timestamptz NOT NULL)`);
}
const pgValues = async (table) => (await pgAdmin.query(`SELECT key, value FROM ${table} WHERE expires_at > now()`)).rows;

for (const client of ['pg', 'postgres.js']) {
  test(`Postgres (${client}), 0–80 ms: ${PROCESSES} Node processes, bursts at one instant and spread over 1.5 s, mint once every run`, { timeout: 180_000 }, async () => {
    const outcomes = [];
    for (const spreadMs of [0, 0, 1_500]) {
      await freshPg('fleet_bursts');
      const reports = await fleet(PROCESSES, pgCfg('fleet_bursts', client)({ spreadMs }));
      outcomes.push({ spreadMs, ...summary(reports), overlapped: overlapped(reports), tokenRequests: emu.stats().tokenRequests });
    }
    console.log(`# postgres (${client}) fleet runs:`, JSON.stringify(outcomes));
    for (const o of outcomes) {
      assert.deepEqual(
        { tokens: o.tokens, tokenRequests: o.tokenRequests, errors: o.errors.length, served: o.served },
        { tokens: 1, tokenRequests: 1, errors: 0, served: PROCESSES * 10 },
        JSON.stringify(o),
      );
      if (o.spreadMs === 0) assert.ok(o.overlapped, JSON.stringify(o));
    }
  });

  if (client === 'pg') {
    test(`Postgres, 0–80 ms: ${PROCESSES / 2} Rust and ${PROCESSES / 2} Node processes on one table mint once every run`, { timeout: 180_000 }, async () => {
      assert.ok(existsSync(rustInstance), `build it first: cargo build --features native --examples (${rustInstance})`);
      const outcomes = [];
      for (const spreadMs of [0, 0, 1_500]) {
        await freshPg('fleet_mixed');
        outcomes.push(await mixedRun(pgCfg('fleet_mixed', 'pg')({ spreadMs }), spreadMs));
      }
      console.log('# mixed rust/node fleet on postgres:', JSON.stringify(outcomes));
      for (const o of outcomes) assertMixedOutcome(o);
    });
  }

  test(`Postgres (${client}), 0–80 ms: 10 Node processes — cold bursts mint once, then once per refresh, nothing expired, nothing readable`, { timeout: 180_000 }, async () => {
    await platformFleet(`postgres (${client})/node`, 10, pgCfg('fleet_platform', client), 'node', {
      clear: () => emptyPg('fleet_platform'),
      values: () => pgValues('fleet_platform'),
    });
  });
}

test('Upstash over HTTP, 0–80 ms: 10 Node processes — cold bursts mint once, then once per refresh, nothing expired, nothing readable', { timeout: 180_000 }, async () => {
  await platformFleet('upstash/node', 10, upstashCfg, 'node', UPSTASH);
});

test('Upstash over HTTP, 0–80 ms: 10 Deno processes — cold bursts mint once, then once per refresh, nothing expired, nothing readable', { timeout: 180_000 }, async () => {
  await platformFleet('upstash/deno', 10, upstashCfg, 'deno', UPSTASH);
});

test('Upstash over HTTP, 0–80 ms: 10 Bun processes — cold bursts mint once, then once per refresh, nothing expired, nothing readable', { timeout: 180_000 }, async () => {
  await platformFleet('upstash/bun', 10, upstashCfg, 'bun', UPSTASH);
});

test('Upstash over HTTP, 0–80 ms: 6 Vercel Edge Runtime VMs running the vercel-edge example — mint once, then once per refresh', { timeout: 180_000 }, async () => {
  await platformFleet('upstash/vercel-edge', 6, edgeCfg, 'node', UPSTASH);
});

test('DynamoDB (dynalite), 0–80 ms: 10 Node processes — cold bursts mint once, then once per refresh, nothing expired, nothing readable', { timeout: 180_000 }, async () => {
  let table = 0;
  let current;
  await platformFleet('dynamodb/node', 10, (extra) => dynamoCfg(current)(extra), 'node', {
    clear: async () => {
      current = `tokens-${table++}`; // a fresh table for each run
      await dynamo.createTable(current);
    },
    values: () => dynamo.values(current),
  });
});

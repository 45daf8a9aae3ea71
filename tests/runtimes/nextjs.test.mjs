// Next.js 16 (Turbopack): the example app in examples/nextjs, with the packed package installed,
// built by `next build` and served by `next start` against the emulator — a route handler on the
// Node.js runtime, the same handler on the edge runtime (the `edge-light` entry, its wasm
// imported as a module at build time), and middleware that fronts the Autopay API. One server
// runs without a shared store (each process and isolate mints its own token); two more run with
// Vercel's Upstash variables set, pointing at a stand-in of Upstash's REST API over a real
// redis-server, and share one token between them.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { installedProject } from '../js/helpers.mjs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { root, run, startEmulator, startRedis } from './helpers.mjs';
import { upstashStandIn } from './upstash-standin.mjs';

// inside the repository, so that Turbopack's project root (the lockfile's folder) holds both the
// app and the next/react it resolves from the repository's node_modules
const app = join(root, 'target', 'nextjs-app');
const next = join(root, 'node_modules', 'next', 'dist', 'bin', 'next');
let emu, base, redis, upstash, alone, fleet;
const PROXY_KEY = 'next-proxy-caller-key-0123456789';
const keyed = { authorization: `Bearer ${PROXY_KEY}` };
const servers = [];

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

before(async () => {
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  cpSync(join(root, 'examples', 'nextjs'), app, { recursive: true });
  cpSync(join(installedProject(), 'node_modules', 'autopay-auth'), join(app, 'node_modules', 'autopay-auth'), { recursive: true });
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };
  await run(process.execPath, [next, 'build'], { cwd: app, env, timeout: 300_000 });
  emu = await startEmulator({ clientId: 'next-client', clientSecret: 'next-secret' });
  redis = await startRedis(mkdtempSync(join(tmpdir(), 'autopay-auth-next-redis-')));
  const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;
  upstash = await upstashStandIn({ redisUrl: redis.url, redisModule, token: 'next-upstash-token', delayMs: 40 });
  const withUpstash = { KV_REST_API_URL: upstash.url, KV_REST_API_TOKEN: upstash.token };
  [alone, ...fleet] = await Promise.all([startNext(env, {}), startNext(env, withUpstash), startNext(env, withUpstash)]);
  base = alone.base;
});

/** `next start` of the built app on a free port, with the emulator's settings and `extra`. */
async function startNext(env, extra) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [next, 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: app,
    env: { ...env, AUTOPAY_CLIENT_ID: 'next-client', AUTOPAY_CLIENT_SECRET: 'next-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_API_BASE: emu.origin, AUTOPAY_PROXY_KEY: PROXY_KEY, ...extra },
    stdio: 'ignore',
  });
  servers.push(child);
  for (const until = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > until) throw new Error('next start did not answer within 60 s');
    if (await fetch(url).then((r) => r.ok, () => false)) break;
  }
  return { base: url, child };
}
after(async () => {
  for (const child of servers) child.kill();
  await upstash?.close();
  redis?.stop();
  await emu?.close();
});
beforeEach(() => emu.post('/__emulator/reset'));

async function burst(path, n = 40) {
  const answers = await Promise.all(Array.from({ length: n }, () => fetch(base + path)));
  return { statuses: answers.map((r) => r.status), bodies: await Promise.all(answers.map((r) => r.json())) };
}

test('a route handler on the Node.js runtime: a burst of 40 mints once', async () => {
  const { statuses, bodies } = await burst('/api/token');
  assert.deepEqual(statuses, Array(40).fill(200));
  assert.ok(bodies.every((b) => b.runtime === 'nodejs'));
  assert.equal(new Set(bodies.map((b) => b.expiresAt)).size, 1, 'one token');
  assert.equal(emu.stats().minted, 1);
});

test('the same handler on the edge runtime: built as an edge function with its wasm, a burst of 40 mints once', async (t) => {
  const manifest = JSON.parse(readFileSync(join(app, '.next', 'server', 'middleware-manifest.json'), 'utf8'));
  const fn = manifest.functions['/api/edge-token/route'];
  assert.ok(fn, 'an edge function');
  assert.ok(fn.wasm.length > 0, 'with the wasm as a module binding');
  const { statuses, bodies } = await burst('/api/edge-token');
  assert.deepEqual(statuses, Array(40).fill(200));
  assert.ok(bodies.every((b) => b.runtime === 'edge'));
  assert.equal(new Set(bodies.map((b) => b.expiresAt)).size, 1, 'one token');
  assert.equal(emu.stats().minted, 1);
  // what the platform deploys for this function: its JS chunks and the wasm, gzip
  // (the manifest may name one wasm under two paths: counted once)
  const contents = new Map();
  for (const f of [...fn.files, ...fn.wasm.map((w) => w.filePath)].map((p) => join(app, '.next', p)).filter(existsSync)) {
    const bytes = readFileSync(f);
    contents.set(createHash('sha256').update(bytes).digest('hex'), bytes);
  }
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const sum = (f) => [...contents.values()].reduce((n, b) => n + f(b), 0);
  t.diagnostic(`edge function /api/edge-token: ${kib(sum((b) => b.length))} raw, ${kib(sum((b) => gzipSync(b, { level: 9 }).length))} gzip, Next.js's own runtime included`);
});

test('middleware (edge runtime): a caller without the key gets 401 and no token, and nothing reaches the API', async () => {
  const before = emu.stats().apiRequests;
  for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789abcdef' }, { authorization: PROXY_KEY }]) {
    const answer = await fetch(`${base}/autopay/customer_club/members`, { headers });
    assert.equal(answer.status, 401, JSON.stringify(headers));
    const text = await answer.text();
    assert.deepEqual(emu.issued().filter((t) => text.includes(t)), [], 'no token in the answer');
  }
  assert.equal(emu.stats().apiRequests, before, 'nothing was proxied');
});

test('middleware (edge runtime) fronts the Autopay API with the token', async () => {
  const answer = await fetch(`${base}/autopay/customer_club/members?limit=1`, { headers: { ...keyed, cookie: 'session=secret' } });
  assert.equal(answer.status, 200);
  const echoed = await answer.json();
  assert.equal(echoed.path, '/customer_club/members');
  assert.deepEqual(echoed.query, { limit: '1' });
  assert.equal(echoed.cookie, null, 'the caller\u2019s cookie stays behind');
  assert.equal(emu.stats().apiUnauthorized, 0);
  assert.equal(emu.stats().minted, 1);
});

test('middleware (edge runtime): an API 401 drops the token, mints once and retries once', async () => {
  // on a server whose middleware has not run yet, so its isolate's first token is its own mint
  // (a token refused twice in a row right after minting is held instead: see RELIABILITY.md)
  await redis.cli('flushall');
  const server = fleet[1].base;
  assert.equal((await fetch(`${server}/autopay/customer_club/members`, { headers: keyed })).status, 200);
  emu.revoke(); // every token issued so far is refused from now on
  const before = emu.stats();
  const answer = await fetch(`${server}/autopay/customer_club/members`, { headers: keyed });
  const after = emu.stats();
  assert.equal(answer.status, 200, JSON.stringify({ before, after, body: await answer.text() }));
  assert.deepEqual(
    { minted: after.minted - before.minted, refused: after.apiUnauthorized - before.apiUnauthorized, calls: after.apiRequests - before.apiRequests },
    { minted: 1, refused: 1, calls: 2 },
  );
});

test('with Upstash connected: two servers, their Node routes and edge isolates, a burst of 80 at one instant mints once', async () => {
  await redis.cli('flushall');
  const paths = fleet.flatMap((f) => ['/api/token', '/api/edge-token'].map((p) => f.base + p));
  const answers = await Promise.all(Array.from({ length: 80 }, (_, i) => fetch(paths[i % paths.length])));
  assert.deepEqual(answers.map((r) => r.status), Array(80).fill(200));
  const bodies = await Promise.all(answers.map((r) => r.json()));
  assert.deepEqual(new Set(bodies.map((b) => b.runtime)), new Set(['nodejs', 'edge']));
  assert.equal(new Set(bodies.map((b) => b.expiresAt)).size, 1, 'one token for all four');
  assert.equal(emu.stats().tokenRequests, 1);
  // the record (sealed) and the fleet state beside it, in Upstash
  const keys = (await redis.cli('--scan')).split('\n').filter(Boolean).sort();
  assert.equal(keys.length, 2, keys.join());
  assert.ok(upstash.counts.requests > 0);
});


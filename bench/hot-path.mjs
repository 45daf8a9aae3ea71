// Benchmark (not a test): cache-hit cost of getToken() in Node, side by side with the JS
// clients users would otherwise pick; package size. (Cold start, import included, is in
// bench/peers.mjs.) Prints tables; writes bench/results/hot-path.json for bench/report.mjs.
//   node bench/hot-path.mjs            (after `npm run build`)
import { readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';
import { clients } from './clients.mjs';
import { loadAverage, saveResult } from './common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'pkg');
const ROUNDS = 300;
const BATCH = 1_000;

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p99: q(0.99) };
}

/** Per-call ns of `await fn()`, measured over batches of BATCH calls (timer cost amortised). */
async function measure(fn) {
  for (let i = 0; i < 20_000; i++) await fn(); // warm up (JIT)
  const samples = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  return summary(samples);
}

const loadBefore = loadAverage();
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret', compat: true });
const { AutopayAuth, MemoryKV } = await import(join(pkg, 'node.mjs'));
const ours = new AutopayAuth({ clientId: 'bench', clientSecret: 'bench-secret', tokenUrl: emu.tokenUrl, kv: new MemoryKV(), logger: null });
await ours.getToken();

// The baseline a careful engineer writes by hand: a Map and a shared promise.
const handCache = new Map();
let inflight = null;
async function handWritten() {
  const hit = handCache.get('t');
  if (hit && hit.expiresAt - 60_000 > Date.now()) return hit.token;
  inflight ??= fetch(emu.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'bench', client_secret: 'bench-secret', audience: 'https://api.autopay.io', grant_type: 'client_credentials' }),
  })
    .then((r) => r.json())
    .then((b) => {
      handCache.set('t', { token: b.access_token, expiresAt: Date.now() + b.expires_in * 1000 });
      inflight = null;
      return b.access_token;
    });
  return inflight;
}
await handWritten();

// @badgateway/oauth2-client: OAuth2Fetch caches the token and single-flights refreshes.
const { OAuth2Client, OAuth2Fetch } = await import('@badgateway/oauth2-client');
const seed = await handWritten();
const badgateway = new OAuth2Fetch({
  client: new OAuth2Client({ clientId: 'bench', tokenEndpoint: emu.tokenUrl }),
  getNewToken: () => ({ accessToken: seed, refreshToken: null, expiresAt: Date.now() + 86_400_000 }),
  scheduleRefresh: false,
});
await badgateway.getToken();

// simple-oauth2: no cache of its own; users keep the AccessToken and check expired().
const { ClientCredentials } = await import('simple-oauth2');
const so = new ClientCredentials({ client: { id: 'bench', secret: 'bench-secret' }, auth: { tokenHost: emu.origin } });
let soToken = so.createToken({ access_token: seed, expires_in: 86_400, token_type: 'Bearer' });
async function simpleOauth2() {
  if (soToken.expired(60)) soToken = await so.getToken({});
  return soToken.token.access_token;
}

// auth0 7's TokenProvider caches and single-flights; openid-client and oauth4webapi have no
// token cache, so each documented call is a token request (bench/clients.mjs has how each is used).
const peer = async (name) => (await clients[name].load())(emu.tokenUrl);
const auth0 = await peer('auth0');
const openidCall = await peer('openid-client');
const oauth4webapiCall = await peer('oauth4webapi');
await auth0();

/** Per-call ns over `n` calls timed one by one (for clients whose every call is a request). */
async function measureRequests(fn, n = 200) {
  for (let i = 0; i < 20; i++) await fn();
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0));
  }
  return summary(samples);
}

const rows = [
  ['autopay-auth getToken()', await measure(() => ours.getToken()), 'lease'],
  ['hand-written Map + single-flight', await measure(handWritten), 'floor'],
  ['@badgateway/oauth2-client OAuth2Fetch.getToken()', await measure(() => badgateway.getToken()), 'cache'],
  ['simple-oauth2 AccessToken + expired()', await measure(simpleOauth2), 'cache'],
  ['auth0 TokenProvider.getAccessToken()', await measure(auth0), 'cache'],
  ['openid-client clientCredentialsGrant() (no cache: a token request)', await measureRequests(openidCall), 'request'],
  ['oauth4webapi clientCredentialsGrantRequest() (no cache: a token request)', await measureRequests(oauth4webapiCall), 'request'],
];
await emu.close();
if (ours.stats().mints !== 1) throw new Error('benchmark invalid: autopay-auth minted more than once');

const wasm = readFileSync(join(pkg, 'autopay_auth_bg.wasm'));
const glue = ['autopay_auth.js', 'api.js', 'memory-kv.js', 'browser.mjs'].map((f) => readFileSync(join(pkg, f)));
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const glueAll = Buffer.concat(glue);
saveResult('hot-path', {
  date: new Date().toISOString(),
  node: process.version,
  rounds: ROUNDS,
  batch: BATCH,
  load: { before: loadBefore, after: loadAverage() },
  rows: rows.map(([label, r, kind]) => ({ label, kind, median: r.median, p99: r.p99 })),
  size: { wasmRaw: wasm.length, wasmGzip: gzipSync(wasm, { level: 9 }).length, jsRaw: glueAll.length, jsGzip: gzipSync(glueAll, { level: 9 }).length },
});

console.log(`\nCache-hit getToken() in Node ${process.version} (${ROUNDS} rounds x ${BATCH} awaited calls)`);
console.log('| client | median ns/call | p99 ns/call |');
console.log('|---|---:|---:|');
for (const [name, r] of rows) console.log(`| ${name} | ${r.median.toFixed(0)} | ${r.p99.toFixed(0)} |`);
console.log(`\nSize`);
console.log(`| artefact | raw | gzip -9 |\n|---|---:|---:|`);
console.log(`| autopay_auth_bg.wasm | ${kib(wasm.length)} | ${kib(gzipSync(wasm, { level: 9 }).length)} |`);
console.log(`| browser JS (glue + wrapper + MemoryKV) | ${kib(glueAll.length)} | ${kib(gzipSync(glueAll, { level: 9 }).length)} |`);

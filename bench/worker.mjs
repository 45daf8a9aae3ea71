// Benchmark (not a test): the Worker in workerd (Miniflare), one load generator (autocannon,
// 16 connections), one run, interleaved rounds: (a) a trivial route, (b) /token on a warm cache,
// (c) the proxy route — beside a strong hand-written JS Worker doing the same job
// (bench/baseline-worker.js: memory + single-flight + KV + timing-safe key check + proxy with
// one retry): (d) its proxy route, (e) its /token.
//   node bench/worker.mjs        (after scripts/build-worker.sh)
import autocannon from 'autocannon';
import { Miniflare } from 'miniflare';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';
import { WORKERD_MODULES } from '../tests/worker/helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KEY = 'bench-caller-key-0123456789abcdef';
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
const common = { ...WORKERD_MODULES, host: '127.0.0.1', port: 0, cf: false, kvNamespaces: ['AUTOPAY_TOKENS'] };

const ours = new Miniflare({
  ...common,
  scriptPath: join(root, 'build', 'index.js'),
  durableObjects: { TOKEN_MINTER: 'TokenMinter' },
  bindings: { AUTOPAY_CLIENT_ID: 'bench', AUTOPAY_CLIENT_SECRET: 'bench-secret', PROXY_API_KEYS: KEY, AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_API_BASE: emu.origin },
});
const oursUrl = await ours.ready;
const headers = { authorization: `Bearer ${KEY}` };
await (await fetch(new URL('/token', oursUrl), { headers })).text(); // warm: one mint

const baseline = new Miniflare({
  ...common,
  scriptPath: join(root, 'bench', 'baseline-worker.js'),
  bindings: { CALLER_KEY: KEY, CLIENT_ID: 'bench', CLIENT_SECRET: 'bench-secret', TOKEN_URL: emu.tokenUrl, API_BASE: emu.origin },
});
const baseUrl = await baseline.ready;
await (await fetch(new URL('/token', baseUrl), { headers })).text(); // warm: its own one mint

async function load(url, extra) {
  const r = await autocannon({ url, connections: 16, duration: SECONDS, ...extra });
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad > 0) throw new Error(`${url}: ${bad} failed requests`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const scenarios = [
  ['platform floor: trivial route of a JS Worker', new URL('/trivial', baseUrl).href, {}],
  ['(a) trivial route (autopay-auth GET /livez)', new URL('/livez', oursUrl).href, {}],
  ['(b) /token, warm cache (autopay-auth)', new URL('/token', oursUrl).href, { headers }],
  ['(c) proxy route (autopay-auth)', new URL('/customer_club/members?limit=1', oursUrl).href, { headers }],
  ['(d) proxy route (hand-written JS)', new URL('/customer_club/members?limit=1', baseUrl).href, { headers }],
  ['(e) /token, warm cache (hand-written JS)', new URL('/token', baseUrl).href, { headers }],
];
for (const [, url, extra] of scenarios) await autocannon({ url, connections: 16, duration: 1, ...extra }); // warm up
// Interleaved rounds, so drift on a busy 2-core machine hits every scenario alike; medians reported.
const samples = scenarios.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, [, url, extra]] of scenarios.entries()) samples[i].push(await load(url, extra));
}
const median = (xs) => [...xs].sort((p, q) => p.rps - q.rps)[Math.floor(xs.length / 2)];
const rows = scenarios.map(([name], i) => [name, median(samples[i])]);
const minted = emu.stats().minted;
await ours.dispose();
await baseline.dispose();
await emu.close();
if (minted !== 2) throw new Error(`benchmark invalid: ${minted} mints (one per Worker expected)`);

const [floor, a, b, c, d, e] = rows.map(([, r]) => r);
console.log(`\nWorker in workerd (Miniflare ${JSON.parse(readFileSync(join(root, 'node_modules/miniflare/package.json'))).version}), autocannon 16 connections, ${ROUNDS} interleaved rounds x ${SECONDS} s, median round; Node ${process.version}`);
console.log('| route | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|');
for (const [name, r] of rows) console.log(`| ${name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} |`);
const pct = (x, y) => `${((100 * x.rps) / y.rps).toFixed(0)} %`;
console.log(`\n(b)/(e) /token = ${pct(b, e)}; (c)/(d) proxy = ${pct(c, d)}; (a)/floor trivial = ${pct(a, floor)}; tokens minted during the run: ${minted} (one per Worker)`);
const wasm = readFileSync(join(root, 'build', 'index_bg.wasm'));
console.log(`Worker wasm: ${(wasm.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(1)} KiB gzip (goal ≤ 200 KB)`);

// Benchmark (not a test): the autopay-auth Worker beside a strong hand-written JS Worker doing
// the same job (bench/baseline-worker.js: memory + single-flight + KV + timing-safe key check +
// proxy with one retry), both in ONE workerd, each on its own socket (Miniflare
// `unsafeDirectSockets`, so no entry worker sits in front of either), against the emulator.
// - steady routes, interleaved rounds of autocannon (16 connections): the trivial route, /token
//   on a warm cache, a proxied GET; req/s, latency, and workerd CPU per request from
//   /proc/<workerd>/task/*/schedstat (nanoseconds on CPU, every thread) — the steadier figure on
//   a shared machine;
// - cold start: a fresh workerd holding one of the two, the first /token (a mint) after ready;
//   each Worker given to Miniflare as deployed, module by module (bench/common.mjs
//   `benchWorker`: for ours the bundle `wrangler deploy --dry-run` makes);
// - cold burst: 500 concurrent /token on a fresh workerd: p50/p99, mints, and (ours) the KV
//   reads and Durable Object calls of the isolate, from its keyed /healthz.
// Prints tables; writes bench/results/worker.json for bench/report.mjs.
//   node bench/worker.mjs        (after scripts/build-worker.sh)
import autocannon from 'autocannon';
import { Miniflare } from 'miniflare';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';
import { benchHeaders, benchWorker, loadAverage, median, quantile, saveResult } from './common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8); // even: each goes first as often
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 9);
const BURST = Number(process.env.BENCH_BURST ?? 500);
const BURST_RUNS = Number(process.env.BENCH_BURST_RUNS ?? 3);
const headers = benchHeaders;
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
const loadBefore = loadAverage();

const workers = { ours: benchWorker('ours', 'autopay-auth', emu), js: benchWorker('js', 'baseline', emu) };

/** A fresh workerd holding `list` (of `workers`), with the direct URL of each; `persist`, a
 * directory for KV and Durable Object state that outlives this workerd (a warm fleet). */
async function start(list, persist) {
  // the Workers' own logs (a JSON line per mint) and workerd's notes on closed connections are not
  // the benchmark's output
  const state = persist ? { kvPersist: join(persist, 'kv'), durableObjectsPersist: join(persist, 'do') } : {};
  const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, handleRuntimeStdio() {}, workers: list, ...state });
  await mf.ready;
  const urls = await Promise.all(list.map((w) => mf.unsafeGetDirectURL(w.name)));
  return { mf, urls };
}

/** The workerd process Miniflare started (a child of this process). */
function workerdPid() {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'workerd') return pid;
    } catch {
      // gone meanwhile
    }
  }
  throw new Error('workerd process not found');
}

/** Nanoseconds the process has run on a CPU, all threads. */
function cpuNs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread ended
    }
  }
  return ns;
}

// ---- steady routes: one workerd with both Workers, interleaved rounds ----
const both = await start([workers.ours, workers.js]);
const [oursUrl, jsUrl] = both.urls;
const pid = workerdPid();
const minted0 = emu.stats().minted;
await (await fetch(new URL('/token', oursUrl), { headers })).text(); // warm: one mint each
await (await fetch(new URL('/token', jsUrl), { headers })).text();

async function load(url, extra) {
  const cpu0 = cpuNs(pid);
  const r = await autocannon({ url, connections: 16, duration: SECONDS, ...extra });
  const cpu = cpuNs(pid) - cpu0;
  const bad = r.non2xx + r.errors + r.timeouts;
  if (bad > 0) throw new Error(`${url}: ${bad} failed requests`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, cpuUs: cpu / 1000 / r.requests.total };
}

const PROXY_PATH = '/customer_club/members?limit=1';
const routes = [
  { route: 'trivial route', ours: ['/livez', {}], js: ['/trivial', {}] },
  { route: '/token, warm', ours: ['/token', { headers }], js: ['/token', { headers }] },
  { route: 'proxy GET', ours: [PROXY_PATH, { headers }], js: [PROXY_PATH, { headers }] },
];
const scenarios = routes.flatMap((r) => [
  { route: r.route, who: 'ours', url: new URL(r.ours[0], oursUrl).href, extra: r.ours[1] },
  { route: r.route, who: 'js', url: new URL(r.js[0], jsUrl).href, extra: r.js[1] },
]);
for (const s of scenarios) await autocannon({ url: s.url, connections: 16, duration: 1, ...s.extra }); // warm up
const samples = scenarios.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  // the two take turns going first on each route (ABBA): on this machine the one that goes
  // first pays for what the run before it left behind (bench/proxy-ab.mjs, both orders: about
  // 15–20 µs of CPU per proxied call), which a fixed order charges to the same Worker every round
  for (let p = 0; p < scenarios.length; p += 2) {
    for (const i of round % 2 === 0 ? [p, p + 1] : [p + 1, p]) samples[i].push(await load(scenarios[i].url, scenarios[i].extra));
  }
}
const steadyMints = emu.stats().minted - minted0;
await both.mf.dispose();
if (steadyMints !== 2) throw new Error(`benchmark invalid: ${steadyMints} mints (one per Worker expected)`);
const pick = (xs, key) => median(xs.map((x) => x[key]));
const steady = routes.map((r) => {
  const row = { route: r.route };
  for (const who of ['ours', 'js']) {
    const xs = samples[scenarios.findIndex((s) => s.route === r.route && s.who === who)];
    row[who] = { rps: pick(xs, 'rps'), p50: pick(xs, 'p50'), p99: pick(xs, 'p99'), cpuUs: pick(xs, 'cpuUs') };
  }
  return row;
});

// ---- cold start and cold burst: a fresh workerd per sample, the two alternating ----
/** The first /token of a fresh workerd, split by the emulator's clock: until the token request
 * reached Autopay, at Autopay, and from its answer to the response. */
async function firstToken(who) {
  const s0 = performance.now();
  const { mf, urls } = await start([workers[who]]);
  const t0 = performance.now();
  const r = await fetch(new URL('/token', urls[0]), { headers });
  await r.text();
  const t1 = performance.now();
  await mf.dispose();
  if (r.status !== 200) throw new Error(`${who}: first /token answered ${r.status}`);
  const { arrived, answered } = emu.state.lastMint;
  return { ready: t0 - s0, total: t1 - t0, before: arrived - t0, autopay: answered - arrived, after: t1 - answered };
}

/** A new isolate in a warm fleet: a first workerd mints (the token lands in KV), a second one
 * starts on the same KV and Durable Object state; its first /token must mint nothing. For ours
 * also the isolate's I/O for it (KV reads, Durable Object calls), from its keyed /healthz. */
async function warmFleetToken(who) {
  const persist = mkdtempSync(join(tmpdir(), `bench-fleet-${who}-`));
  try {
    const first = await start([workers[who]], persist);
    await (await fetch(new URL('/token', first.urls[0]), { headers })).text();
    await new Promise((r) => setTimeout(r, 300)); // the minter's copy to KV lands after its answer
    await first.mf.dispose();
    const minted = emu.stats().minted;
    const s0 = performance.now();
    const { mf, urls } = await start([workers[who]], persist);
    const t0 = performance.now();
    const r = await fetch(new URL('/token', urls[0]), { headers });
    await r.text();
    const t1 = performance.now();
    if (r.status !== 200) throw new Error(`${who}: warm-fleet /token answered ${r.status}`);
    if (emu.stats().minted !== minted) throw new Error(`${who}: a new isolate in a warm fleet minted`);
    const out = { ready: t0 - s0, total: t1 - t0 };
    if (who === 'ours') {
      const h = await (await fetch(new URL('/healthz', urls[0]), { headers })).json();
      out.kvReads = h.isolate.kv_reads;
      out.minterCalls = h.isolate.minter_calls; // (its /healthz included)
    }
    await mf.dispose();
    return out;
  } finally {
    rmSync(persist, { recursive: true, force: true });
  }
}
const coldRuns = { ours: [], js: [] };
const fleetRuns = { ours: [], js: [] };
for (let i = 0; i < COLD_RUNS; i++) {
  for (const who of ['ours', 'js']) coldRuns[who].push(await firstToken(who));
  for (const who of ['ours', 'js']) fleetRuns[who].push(await warmFleetToken(who));
}
const medianOf = (runs) => Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))]));
const cold = { ours: medianOf(coldRuns.ours), js: medianOf(coldRuns.js) };
// the two started in turns: the median of the run-by-run differences cancels the machine's drift
cold.readyExtra = median(coldRuns.ours.map((r, i) => r.ready - coldRuns.js[i].ready));
cold.readyRuns = { ours: coldRuns.ours.map((r) => r.ready), js: coldRuns.js.map((r) => r.ready) };
const warmFleet = { ours: medianOf(fleetRuns.ours), js: medianOf(fleetRuns.js) };

async function burst(who) {
  const { mf, urls } = await start([workers[who]]);
  const before = emu.stats().minted;
  const times = await Promise.all(
    Array.from({ length: BURST }, async () => {
      const t0 = performance.now();
      const r = await fetch(new URL('/token', urls[0]), { headers });
      await r.text();
      if (r.status !== 200) throw new Error(`${who}: /token answered ${r.status} in the burst`);
      return performance.now() - t0;
    }),
  );
  const out = { p50: quantile(times, 0.5), p99: quantile(times, 0.99), mints: emu.stats().minted - before };
  if (who === 'ours') {
    const h = await (await fetch(new URL('/healthz', urls[0]), { headers })).json();
    out.kvReads = h.isolate.kv_reads;
    out.minterCalls = h.isolate.minter_calls;
  }
  await mf.dispose();
  return out;
}
// alternating, a fresh workerd each; the median run (by p50) of each is reported
const burstRuns = { ours: [], js: [] };
for (let i = 0; i < BURST_RUNS; i++) for (const who of ['ours', 'js']) burstRuns[who].push(await burst(who));
const medianRun = (runs) => [...runs].sort((a, b) => a.p50 - b.p50)[Math.floor(runs.length / 2)];
const bursts = { ours: medianRun(burstRuns.ours), js: medianRun(burstRuns.js) };
await emu.close();

const wasm = readFileSync(join(root, 'build', 'index_bg.wasm'));
const result = {
  date: new Date().toISOString(),
  node: process.version,
  miniflare: JSON.parse(readFileSync(join(root, 'node_modules/miniflare/package.json'))).version,
  connections: 16,
  rounds: ROUNDS,
  seconds: SECONDS,
  load: { before: loadBefore, after: loadAverage() },
  steady,
  cold: { ...cold, runs: COLD_RUNS },
  warmFleet: { ...warmFleet, runs: COLD_RUNS },
  burst: { size: BURST, runs: BURST_RUNS, ...bursts },
  wasm: { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length },
};
saveResult('worker', result);

console.log(`\nWorker vs hand-written JS Worker, one workerd (Miniflare ${result.miniflare}), each on its own socket; autocannon 16 connections, ${ROUNDS} interleaved rounds x ${SECONDS} s, medians; Node ${process.version}; load ${result.load.before} → ${result.load.after}`);
console.log('| route | ours req/s | JS req/s | ours ÷ JS | ours CPU µs/req | JS CPU µs/req | ours p50/p99 ms | JS p50/p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of steady) {
  console.log(`| ${r.route} | ${r.ours.rps.toFixed(0)} | ${r.js.rps.toFixed(0)} | ${((100 * r.ours.rps) / r.js.rps).toFixed(0)} % | ${r.ours.cpuUs.toFixed(0)} | ${r.js.cpuUs.toFixed(0)} | ${r.ours.p50}/${r.ours.p99} | ${r.js.p50}/${r.js.p99} |`);
}
const split = (c) => `${c.total.toFixed(1)} ms (${c.before.toFixed(1)} until the token request reaches Autopay, ${c.autopay.toFixed(1)} at Autopay, ${c.after.toFixed(1)} after)`;
console.log(`\ncold start, first /token (median of ${COLD_RUNS} fresh workerd): ours ${split(cold.ours)}; JS ${split(cold.js)}; ${(cold.ours.total / cold.js.total).toFixed(2)}x`);
console.log(`new isolate ready (workerd start + compile, median): ours ${cold.ours.ready.toFixed(1)} ms, JS ${cold.js.ready.toFixed(1)} ms (run by run: +${cold.readyExtra.toFixed(1)} ms; ours ${cold.readyRuns.ours.map((x) => x.toFixed(0)).join(', ')}; JS ${cold.readyRuns.js.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`first /token of a new isolate in a warm fleet (token in KV, no mint; median of ${COLD_RUNS}): ours ${warmFleet.ours.total.toFixed(1)} ms (${warmFleet.ours.kvReads} KV read, ${warmFleet.ours.minterCalls} Durable Object call), JS ${warmFleet.js.total.toFixed(1)} ms; ${(warmFleet.ours.total / warmFleet.js.total).toFixed(2)}x`);
console.log(`${BURST} concurrent cold /token (median of ${BURST_RUNS} fresh workerd): ours p50 ${bursts.ours.p50.toFixed(0)} ms p99 ${bursts.ours.p99.toFixed(0)} ms, ${bursts.ours.mints} mint, ${bursts.ours.kvReads} KV read, ${bursts.ours.minterCalls} Durable Object call; JS p50 ${bursts.js.p50.toFixed(0)} ms p99 ${bursts.js.p99.toFixed(0)} ms, ${bursts.js.mints} mint (p50 ${(bursts.ours.p50 / bursts.js.p50).toFixed(2)}x)`);
console.log(`Worker wasm: ${(wasm.length / 1024).toFixed(1)} KiB raw, ${(result.wasm.gzip / 1024).toFixed(1)} KiB gzip`);

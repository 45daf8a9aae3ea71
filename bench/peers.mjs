// Benchmark (not a test): autopay-auth beside the token clients users would otherwise pick, each
// at its pinned version and used the way its documentation recommends for client credentials,
// against the Autopay emulator (compat mode: form bodies and client_secret_basic accepted):
// - storm: 1,000 concurrent calls on a cold client → tokens minted;
// - steady: 5,000 calls spread over 10 s with 4-second tokens → tokens minted, tokens handed out
//   already expired, and with under 100 ms left (the emulator knows each token's expiry);
// - cold start: import, construct and first token in a fresh process (bench/cold-start.mjs),
//   median of 11, the clients taking turns so that drift hits each alike (each run's totals are
//   kept, so a client can be compared with the floor run by run);
// - install size: the package and its dependencies as npm installs them;
// - browser payload: an esbuild browser bundle of the client, minified, gzip (autopay-auth: its
//   browser entry, glue and .wasm).
// Prints a table; writes bench/results/peers.json for bench/report.mjs.
//   node bench/peers.mjs            (after `npm run build`)
import { join, dirname } from 'node:path';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const execFile = promisify(execFileCb);
import { startEmulator } from '../tests/emulator/server.mjs';
import { clients, ID, SECRET } from './clients.mjs';
import { loadAverage, median, saveResult } from './common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const STORM = Number(process.env.BENCH_STORM ?? 1_000);
const STEADY_CALLS = Number(process.env.BENCH_STEADY_CALLS ?? 5_000);
const STEADY_MS = Number(process.env.BENCH_STEADY_MS ?? 10_000);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 11);

const emu = await startEmulator({ clientId: ID, clientSecret: SECRET, compat: true });
const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
const pkgDir = join(root, 'pkg');

async function storm(make) {
  await emu.post('/__emulator/reset');
  const get = make();
  const tokens = await Promise.all(Array.from({ length: STORM }, () => get()));
  return { mints: emu.stats().minted, distinct: new Set(tokens).size };
}

async function steady(make) {
  await emu.post('/__emulator/reset');
  emu.setExpiresIn(4);
  const get = make();
  const started = Date.now();
  const results = [];
  for (let i = 0; i < STEADY_CALLS; i++) {
    const due = started + (i * STEADY_MS) / STEADY_CALLS;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    results.push(get().then((token) => {
      const left = (emu.state.tokens.get(token) ?? 0) - Date.now();
      return left;
    }, () => null));
  }
  const lefts = await Promise.all(results);
  emu.setExpiresIn(86_400);
  return {
    mints: emu.stats().minted,
    expired: lefts.filter((l) => l !== null && l <= 0).length,
    under100: lefts.filter((l) => l !== null && l > 0 && l < 100).length,
    failed: lefts.filter((l) => l === null).length,
  };
}

/** One cold start of `name` in a fresh process: { import, construct, first, total } ms. */
async function coldStart(name) {
  await emu.post('/__emulator/reset');
  await new Promise((r) => setTimeout(r, 250)); // let the last run's process (auth0's takes 0.3 s) settle
  const { stdout } = await execFile(process.execPath, [join(root, 'bench', 'cold-start.mjs'), name, emu.tokenUrl, pkgDir], { cwd: root });
  return JSON.parse(stdout.trim().split('\n').pop());
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
function dirSize(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirSize(p) : e.isFile() ? statSync(p).size : 0;
  }
  return total;
}

/** What `npm install` puts on disk for the package (from the local cache where it can); for
 * autopay-auth also its own files by kind, so a miss of the weight goal says where the weight is. */
function installSize(pkgName, v) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-install-'));
  writeFileSync(join(dir, 'package.json'), '{"private":true}');
  // autopay-auth: the tarball `npm pack` makes of pkg/
  const tarball = () => join(dir, execFileSync('npm', ['pack', pkgDir, '--pack-destination', dir, '--silent'], { encoding: 'utf8' }).trim());
  const spec = pkgName === null ? tarball() : `${pkgName}@${v}`;
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', spec], { cwd: dir, stdio: 'ignore' });
  const total = dirSize(join(dir, 'node_modules'));
  if (pkgName !== null) return { total };
  const kinds = { wasm: 0, standalone: 0, glue: 0, adapters: 0, types: 0, docs: 0 };
  const adapters = /^(redis|redis-commands|deno-kv|upstash|dynamodb|postgres|cloudflare|conformance)\./;
  for (const f of readdirSync(join(dir, 'node_modules', 'autopay-auth'))) {
    const size = statSync(join(dir, 'node_modules', 'autopay-auth', f)).size;
    const kind = f.endsWith('.wasm') ? 'wasm' : f.startsWith('wasm-') ? 'standalone' : /\.d\.c?ts$/.test(f) ? (adapters.test(f) ? 'adapters' : 'types') : adapters.test(f) ? 'adapters' : /\.(m|c)?js$/.test(f) ? 'glue' : 'docs';
    kinds[kind] += size;
  }
  return { total, kinds };
}

/** gzip of a minified esbuild browser bundle importing `code`. */
function browserPayload(code) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-bundle-'));
  writeFileSync(join(dir, 'entry.mjs'), code);
  execFileSync(join(root, 'node_modules', '.bin', 'esbuild'), [join(dir, 'entry.mjs'), '--bundle', '--minify', '--format=esm', '--platform=browser', `--outfile=${join(dir, 'out.js')}`, '--log-level=error', '--external:node:*'], { cwd: root, nodePaths: [join(root, 'node_modules')], env: { ...process.env, NODE_PATH: join(root, 'node_modules') } });
  return gzipSync(readFileSync(join(dir, 'out.js')), { level: 9 }).length;
}

function ourPayload() {
  const pkg = join(root, 'pkg');
  const files = ['browser.mjs', 'api.js', 'autopay_auth.js', 'memory-kv.js', 'autopay_auth_bg.wasm'];
  return files.reduce((n, f) => n + gzipSync(readFileSync(join(pkg, f)), { level: 9 }).length, 0);
}

const loadBefore = loadAverage();
const rows = [];
for (const [name, client] of Object.entries(clients)) {
  const make = await client.load(pkgDir);
  const fresh = () => make(emu.tokenUrl);
  rows.push({
    name,
    label: client.label,
    version: client.npm ? version(client.npm) : name === 'autopay-auth' ? 'local build' : null,
    storm: await storm(fresh),
    steady: await steady(fresh),
    ...(name === 'hand-written' ? { install: null } : (({ total, kinds }) => ({ install: total, installKinds: kinds }))(installSize(client.npm, client.npm && version(client.npm)))),
    browser: name === 'autopay-auth' ? ourPayload() : client.browser ? browserPayload(client.browser) : null,
  });
}
// cold starts last, the clients taking turns
const coldRuns = Object.fromEntries(rows.map((r) => [r.name, []]));
for (let i = 0; i < COLD_RUNS; i++) for (const r of rows) coldRuns[r.name].push(await coldStart(r.name));
for (const r of rows) {
  const runs = coldRuns[r.name];
  r.cold = Object.fromEntries(['import', 'construct', 'first', 'total'].map((k) => [k, median(runs.map((x) => x[k]))]));
  r.cold.runs = runs.map((x) => x.total);
}
await emu.close();
const result = { date: new Date().toISOString(), node: process.version, storm: STORM, steadyCalls: STEADY_CALLS, steadyMs: STEADY_MS, coldRuns: COLD_RUNS, load: { before: loadBefore, after: loadAverage() }, clients: rows };
saveResult('peers', result);

console.log(`Token clients against the Autopay emulator; Node ${process.version}, ${result.date.slice(0, 10)}; load ${result.load.before} → ${result.load.after}`);
console.log(`storm: ${STORM} concurrent cold calls; steady: ${STEADY_CALLS} calls over ${STEADY_MS / 1000} s with 4-second tokens; cold start: median of ${COLD_RUNS}\n`);
console.log('| client | version | storm: mints | steady: mints | steady: handed out expired | steady: < 100 ms left | steady: failed | cold start ms (import + construct + first token) | install size | browser payload (gzip) |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const c = r.cold;
  const payload = r.browser !== null ? kib(r.browser) : clients[r.name].browser === null && r.name === 'hand-written' ? '—' : 'Node only';
  console.log(`| ${r.label} | ${r.version ?? '—'} | ${r.storm.mints} | ${r.steady.mints} | ${r.steady.expired} | ${r.steady.under100} | ${r.steady.failed} | ${c.total.toFixed(1)} (${c.import.toFixed(1)} + ${c.construct.toFixed(1)} + ${c.first.toFixed(1)}) | ${r.install === null ? '—' : kib(r.install)} | ${payload} |`);
}

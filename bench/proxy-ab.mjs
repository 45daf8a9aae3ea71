// Ad-hoc A/B (not part of npm run bench): the proxy route of two builds of this Worker beside the
// JS baseline, in one workerd, interleaved rounds; CPU µs per request from schedstat.
//   node bench/proxy-ab.mjs /path/to/other/checkout   (both built with scripts/build-worker.sh)
import autocannon from 'autocannon';
import { Miniflare } from 'miniflare';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';
import { WORKERD_MODULES } from '../tests/worker/helpers.mjs';
import { benchBindings, benchHeaders, median } from './common.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const other = process.argv[2];
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9); // a multiple of 3: each goes first as often
const headers = benchHeaders;
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
const ours = (name, dir) => ({
  name, ...WORKERD_MODULES, modulesRoot: dir, scriptPath: join(dir, 'src', 'cloudflare', 'front.js'),
  durableObjects: { TOKEN_MINTER: 'TokenMinter' }, kvNamespaces: { AUTOPAY_TOKENS: `${name}-tokens` },
  bindings: benchBindings('ours', emu),
  unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
});
const list = [ours('this', process.argv[3] ?? root), ours('other', other), {
  name: 'js', ...WORKERD_MODULES, scriptPath: join(root, 'bench', 'baseline-worker.js'), kvNamespaces: { AUTOPAY_TOKENS: 'js-tokens' },
  bindings: benchBindings('js', emu),
  unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
}];
const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, handleRuntimeStdio() {}, workers: list });
await mf.ready;
const urls = await Promise.all(list.map((w) => mf.unsafeGetDirectURL(w.name)));
const pid = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).find((p) => {
  try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'workerd' && Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === process.pid; } catch { return false; }
});
const cpu = () => readdirSync(`/proc/${pid}/task`).reduce((n, t) => { try { return n + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { return n; } }, 0);
const path = process.env.BENCH_PATH ?? '/customer_club/members?limit=1';
const samples = list.map(() => []);
for (const u of urls) await autocannon({ url: new URL(path, u).href, connections: 16, duration: 1, headers });
for (let r = 0; r < ROUNDS; r++) {
  // each round another goes first: the first pays for what the run before it left behind
  for (const i of urls.map((_, k) => (k + r) % urls.length)) {
    const u = urls[i];
    const c0 = cpu();
    const res = await autocannon({ url: new URL(path, u).href, connections: 16, duration: 3, headers });
    if (res.non2xx + res.errors) throw new Error(`${list[i].name}: failures`);
    samples[i].push({ rps: res.requests.average, cpuUs: (cpu() - c0) / 1000 / res.requests.total });
  }
}
for (const [i, w] of list.entries()) {
  console.log(`${w.name}: ${median(samples[i].map((s) => s.rps)).toFixed(0)} req/s, ${median(samples[i].map((s) => s.cpuUs)).toFixed(0)} µs CPU/req (rounds: ${samples[i].map((s) => s.cpuUs.toFixed(0)).join(' ')})`);
}
await mf.dispose();
await emu.close();

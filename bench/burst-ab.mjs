// Ad-hoc A/B (not part of npm run bench): the 500-request cold burst of two builds of this Worker
// beside the JS baseline, each a fresh workerd per burst, as deployed (the bundle `wrangler deploy
// --dry-run` makes in each checkout), the three taking turns; the p50 of each burst, and their median.
//   node bench/burst-ab.mjs /path/to/other/checkout   (both built with scripts/build-worker.sh)
import { Miniflare } from 'miniflare';
import { startEmulator } from '../tests/emulator/server.mjs';
import { benchHeaders as headers, benchWorker, median, quantile } from './common.mjs';

const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
const variants = {
  this: benchWorker('ours', 'this', emu),
  other: benchWorker('ours', 'other', emu, process.argv[2]),
  js: benchWorker('js', 'js', emu),
};
const N = Number(process.env.N ?? 500);
async function burst(v) {
  const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, handleRuntimeStdio() {}, workers: [variants[v]] });
  await mf.ready;
  const url = await mf.unsafeGetDirectURL(v);
  const times = await Promise.all(Array.from({ length: N }, async () => { const t0 = performance.now(); const r = await fetch(new URL('/token', url), { headers }); await r.text(); if (r.status !== 200) throw new Error(`${v} ${r.status}`); return performance.now() - t0; }));
  await mf.dispose();
  return quantile(times, 0.5);
}
const res = { this: [], other: [], js: [] };
for (let i = 0; i < Number(process.env.RUNS ?? 5); i++) for (const v of Object.keys(res)) res[v].push(await burst(v));
for (const v of Object.keys(res)) console.log(v, 'p50 median', median(res[v]).toFixed(1), 'runs', res[v].map((x) => x.toFixed(0)).join(' '));
await emu.close();

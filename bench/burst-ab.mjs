// Ad-hoc A/B (not part of npm run bench): the 500-request cold burst of two builds of this Worker
// beside the JS baseline, each a fresh workerd per burst, as deployed (the bundle `wrangler deploy
// --dry-run` makes in each checkout), the three taking turns; the p50 of each burst, and their median.
//   node bench/burst-ab.mjs /path/to/other/checkout   (both built with scripts/build-worker.sh)
import { Miniflare } from 'miniflare';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulator } from '../tests/emulator/server.mjs';
import { WORKERD_MODULES } from '../tests/worker/helpers.mjs';
import { quantile, median, root } from './common.mjs';
const KEY = 'bench-caller-key-0123456789abcdef';
const headers = { authorization: `Bearer ${KEY}` };
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
function bundle(dir) {
  const out = join(root, 'target', `burst-ab-${dir === root ? 'this' : 'other'}`);
  rmSync(out, { recursive: true, force: true });
  execFileSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '--outdir', out], { cwd: dir, stdio: 'ignore', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  return [{ type: 'ESModule', path: join(out, readdirSync(out).find((f) => f.endsWith('.js') && !f.endsWith('.map'))) }, ...readdirSync(out).filter((f) => f.endsWith('.wasm')).map((f) => ({ type: 'CompiledWasm', path: join(out, f) }))];
}
const ours = (name, modules) => ({ name, compatibilityDate: WORKERD_MODULES.compatibilityDate, modulesRoot: '/', modules, durableObjects: { TOKEN_MINTER: 'TokenMinter' }, kvNamespaces: ['AUTOPAY_TOKENS'],
  bindings: { AUTOPAY_CLIENT_ID: 'bench', AUTOPAY_CLIENT_SECRET: 'bench-secret', PROXY_API_KEYS: KEY, AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_API_BASE: emu.origin }, unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }] });
const variants = {
  this: ours('this', bundle(root)),
  other: ours('other', bundle(process.argv[2])),
  js: { name: 'js', compatibilityDate: WORKERD_MODULES.compatibilityDate, modulesRoot: '/', modules: [{ type: 'ESModule', path: join(root, 'bench', 'baseline-worker.js') }], kvNamespaces: ['AUTOPAY_TOKENS'],
    bindings: { CALLER_KEY: KEY, CLIENT_ID: 'bench', CLIENT_SECRET: 'bench-secret', TOKEN_URL: emu.tokenUrl, API_BASE: emu.origin }, unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }] },
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

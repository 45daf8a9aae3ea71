// Benchmark (not a test): what a new isolate of the Worker pays before its first answer, taken
// apart. Each variant is a fresh workerd (Miniflare) holding one Worker; "ready" is Miniflare's
// start until it serves, then one request (`/livez` for the Worker: no settings, no Rust call).
// The variants take turns, and each is compared run by run with the floor (a Worker carrying
// nothing), so the machine's drift cancels out:
// - the strong JS Worker (bench/baseline-worker.js);
// - the floor plus a wasm module in the bundle, never instantiated — the npm wasm, the Worker's;
// - the floor plus the whole Rust Worker behind a dynamic `import()` never reached;
// - the autopay-auth Worker as deployed (its glue instantiates the wasm at load);
// - the front of a split deployment as deployed (deploy/split: the Rust Worker without the
//   minter, whose object lives in another Worker).
// Every variant has the same bindings (a KV namespace, the Durable Object class), so Miniflare's
// own set-up is the same for each, and is given to Miniflare module by module as deployed (ours:
// the bundle `wrangler deploy --dry-run` makes), so Miniflare parses nothing in Node first. Prints a table; writes bench/results/isolate-start.json for bench/report.mjs.
//   node bench/isolate-start.mjs      (after scripts/build.mjs and scripts/build-worker.sh)
import { Miniflare } from 'miniflare';
import { statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WORKERD_MODULES } from '../tests/worker/helpers.mjs';
import { deployedModules, median, root, saveResult } from './common.mjs';

const RUNS = Number(process.env.BENCH_ISOLATE_RUNS ?? 41);
const here = (f) => join(root, 'bench', 'isolate-start', f);
const js = (path) => ({ type: 'ESModule', path });
const wasm = (path) => ({ type: 'CompiledWasm', path });
const size = (path) => `${(statSync(path).size / 1024).toFixed(0)} KiB`;
const ours = deployedModules();
const oursWasm = ours.find((m) => m.type === 'CompiledWasm').path;
// the front of a split deployment (deploy/split/front.toml) as deployed; its object lives in the
// minter Worker, so a one-line module gives this variant the same class binding as the others
const split = deployedModules(root, 'deploy/split/front.toml');
const splitWasm = split.find((m) => m.type === 'CompiledWasm').path;
writeFileSync(join(dirname(split[0].path), 'entry.js'), `export { default } from './${basename(split[0].path)}';\nexport class TokenMinter { fetch() { return new Response('minter'); } }\n`);
const variants = [
  { key: 'floor', label: 'floor: a Worker carrying nothing', modules: [js(here('trivial.js'))] },
  { key: 'js', label: 'the strong JS Worker (`/trivial`)', modules: [js(here('js-worker.js')), js(join(root, 'bench', 'baseline-worker.js'))], path: '/trivial' },
  { key: 'npmWasm', label: `floor + the npm wasm (${size(join(root, 'pkg', 'autopay_auth_bg.wasm'))}), never instantiated`, modules: [js(here('npm-wasm.js')), wasm(join(root, 'pkg', 'autopay_auth_bg.wasm'))] },
  { key: 'workerWasm', label: `floor + the Worker's wasm (${size(oursWasm)}), never instantiated`, modules: [js(here('worker-wasm.js')), wasm(join(root, 'build', 'index_bg.wasm'))] },
  { key: 'dynamic', label: 'floor + the Rust Worker behind an `import()` never reached', modules: [js(here('worker-dynamic.js')), js(join(root, 'build', 'index.js')), wasm(join(root, 'build', 'index_bg.wasm'))] },
  { key: 'ours', label: 'the autopay-auth Worker as deployed (`/livez`)', modules: ours, path: '/livez' },
  { key: 'split', label: `the front of a split deployment as deployed (its wasm ${size(splitWasm)}; \`/livez\`)`, modules: [js(join(dirname(split[0].path), 'entry.js')), ...split], path: '/livez' },
];

async function once(v) {
  const s0 = performance.now();
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    cf: false,
    handleRuntimeStdio() {},
    workers: [{ name: v.key, compatibilityDate: WORKERD_MODULES.compatibilityDate, modulesRoot: root, modules: v.modules, kvNamespaces: ['AUTOPAY_TOKENS'], durableObjects: { TOKEN_MINTER: 'TokenMinter' }, unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }] }],
  });
  await mf.ready;
  const url = await mf.unsafeGetDirectURL(v.key);
  const t0 = performance.now();
  const r = await fetch(new URL(v.path ?? '/', url));
  await r.text();
  const t1 = performance.now();
  await mf.dispose();
  return { ready: t0 - s0, first: t1 - t0 };
}

const runs = Object.fromEntries(variants.map((v) => [v.key, []]));
const total = (x) => x.ready + x.first;
for (let i = 0; i < RUNS; i++) for (const v of variants) runs[v.key].push(await once(v));
const rows = variants.map((v) => {
  const xs = runs[v.key];
  const over = (base) => median(xs.map((x, i) => total(x) - total(runs[base][i])));
  return { key: v.key, label: v.label, ready: median(xs.map((x) => x.ready)), first: median(xs.map((x) => x.first)), extra: over('floor'), overJs: over('js') };
});
console.log(`new isolate, taken apart (median of ${RUNS} fresh workerd each, interleaved)`);
const signed = (x) => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(1)} ms`;
console.log('| Worker | ready ms | first answer ms | over the floor, run by run | over the JS Worker, run by run |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.label} | ${r.ready.toFixed(1)} | ${r.first.toFixed(1)} | ${r.key === 'floor' ? '—' : signed(r.extra)} | ${r.key === 'js' ? '—' : signed(r.overJs)} |`);
// the split deployment's front against the one Worker, run by run: what the minter's code costs
const splitSaves = median(runs.ours.map((x, i) => total(x) - total(runs.split[i])));
console.log(`\nthe front of a split deployment starts ${splitSaves.toFixed(1)} ms sooner than the one Worker (median of the run-by-run differences)`);
saveResult('isolate-start', { runs: RUNS, rows, splitSaves });

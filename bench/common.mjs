// What every benchmark script shares: statistics, the machine's load, and where results go
// (bench/results/<name>.json, read by bench/report.mjs to write BENCHMARKS.md and the charts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = join(root, 'bench', 'results');

/** The q-quantile (0..1) of `xs` (nearest rank). */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export const median = (xs) => quantile(xs, 0.5);

/** The 1-minute load average, with the core count: "1.52 / 2 cores". */
export const loadAverage = () => `${loadavg()[0].toFixed(2)} / ${cpus().length} cores`;

/** This machine, for the report. */
export function machine() {
  let os = '';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux
  }
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), os };
}

/** Writes one script's result, stamped with the machine. */
export function saveResult(name, result) {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify({ machine: machine(), ...result }, null, 2)}\n`);
}

/** A package's installed version. */
export const versionOf = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

/** The caller key every Worker benchmark calls with, and its header. */
export const BENCH_KEY = 'bench-caller-key-0123456789abcdef';
export const benchHeaders = { authorization: `Bearer ${BENCH_KEY}` };

/** The bindings of the benchmarks' Workers, wired to the emulator `emu`: ours, or (`js`) the
 * strong JS Worker's (bench/baseline-worker.js). */
export function benchBindings(kind, emu) {
  return kind === 'js'
    ? { CALLER_KEY: BENCH_KEY, CLIENT_ID: 'bench', CLIENT_SECRET: 'bench-secret', TOKEN_URL: emu.tokenUrl, API_BASE: emu.origin }
    : { AUTOPAY_CLIENT_ID: 'bench', AUTOPAY_CLIENT_SECRET: 'bench-secret', PROXY_API_KEYS: BENCH_KEY, AUTOPAY_TOKEN_URL: emu.tokenUrl, AUTOPAY_API_BASE: emu.origin };
}

/** A benchmark's Worker for Miniflare, named `name`, as deployed, on a socket of its own: ours
 * (the checkout `dir`'s) or (`js`) the strong JS Worker. */
export function benchWorker(kind, name, emu, dir = root) {
  return {
    name,
    compatibilityDate: /^compatibility_date = "([\d-]+)"/m.exec(readFileSync(join(root, 'wrangler.toml'), 'utf8'))[1],
    modulesRoot: '/',
    modules: kind === 'js' ? [{ type: 'ESModule', path: join(root, 'bench', 'baseline-worker.js') }] : deployedModules(dir),
    ...(kind === 'js' ? {} : { durableObjects: { TOKEN_MINTER: 'TokenMinter' } }),
    kvNamespaces: { AUTOPAY_TOKENS: `${name}-tokens` },
    bindings: benchBindings(kind, emu),
    unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
  };
}

/** The autopay-auth Worker of the checkout `dir` as it is deployed, for Miniflare's `modules`
 * list: the bundle wrangler makes of it (`wrangler deploy --dry-run --outdir`: one JS module and
 * the wasm). Listed module by module, Miniflare parses nothing (with `scriptPath` it walks
 * every import with acorn in Node before workerd starts — 10–18 ms for the Worker's 29 KB of
 * glue, which no deployed isolate pays), so a fresh workerd's start is the runtime's own: what
 * production compiles, no more. */
export function deployedModules(dir = root, config = 'wrangler.toml') {
  const out = join(root, 'target', `${dir === root ? 'bench-bundle' : 'bench-bundle-other'}${config === 'wrangler.toml' ? '' : `-${config.replace(/\W+/g, '-')}`}`);
  rmSync(out, { recursive: true, force: true });
  execFileSync(join(root, 'node_modules', '.bin', 'wrangler'), ['deploy', '--dry-run', '-c', config, '--outdir', out], {
    cwd: dir,
    stdio: 'ignore',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  const files = readdirSync(out);
  return [
    { type: 'ESModule', path: join(out, files.find((f) => f.endsWith('.js'))) },
    ...files.filter((f) => f.endsWith('.wasm')).map((f) => ({ type: 'CompiledWasm', path: join(out, f) })),
  ];
}

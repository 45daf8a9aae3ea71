// The built Worker (build/, from scripts/build-worker.sh) in real workerd through Miniflare,
// with local KV and Durable Objects, against the Autopay emulator.
import { after, afterEach, before, beforeEach } from 'node:test';
import { Log, LogLevel, Miniflare } from 'miniflare';
import { startEmulator } from '../emulator/server.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

export { startEmulator };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CALLER_KEY = 'caller-key-0123456789abcdef';
export const OTHER_KEY = 'rotated-key-fedcba9876543210';
export const CLIENT_ID = 'worker-client';
export const CLIENT_SECRET = 'worker-secret-DO-NOT-LEAK-4242';
export const auth = (key = CALLER_KEY) => ({ authorization: `Bearer ${key}` });

/** How Miniflare loads a Worker built by esbuild/worker-build: ES modules, and `.wasm` files as
 * compiled WebAssembly modules (wrangler's CompiledWasm rule). */
export const WORKERD_MODULES = {
  modules: true,
  modulesRules: [
    { type: 'ESModule', include: ['**/*.js'] },
    { type: 'CompiledWasm', include: ['**/*.wasm'] },
  ],
  // the date deployed (wrangler.toml), so the tests prove the runtime accepts it
  compatibilityDate: /^compatibility_date = "([\d-]+)"/m.exec(readFileSync(join(root, 'wrangler.toml'), 'utf8'))[1],
};

/** A fresh Worker (fresh isolate, KV and Durable Object state) wired to `emu`. A binding
 * given as `null` is left out; `options` adds Miniflare options (persistence, say). `logs`
 * collects what the Worker writes to stdout and stderr. */
export async function startWorker(emu, bindings = {}, options = {}) {
  const logs = [];
  // `minterScript`: the Durable Object's class from another Worker (one that fails, say);
  // `split`: a split deployment (deploy/split) — the front built without the minter
  // (front-split.js, build-front/), bound to the `TokenMinter` of the whole Worker as 'minter'
  const { minterScript, split, ...rest } = options;
  const env = Object.fromEntries(
    Object.entries({
      AUTOPAY_CLIENT_ID: CLIENT_ID,
      AUTOPAY_CLIENT_SECRET: CLIENT_SECRET,
      PROXY_API_KEYS: `${CALLER_KEY}, ${OTHER_KEY}`,
      AUTOPAY_TOKEN_URL: emu.tokenUrl,
      AUTOPAY_API_BASE: `${emu.origin}/api`,
      ...bindings,
    }).filter(([, v]) => v !== null),
  );
  const whole = (name, extra = {}) => ({
    name,
    scriptPath: join(root, 'src', 'cloudflare', 'front.js'),
    modulesRoot: root,
    ...WORKERD_MODULES,
    kvNamespaces: ['AUTOPAY_TOKENS'],
    durableObjects: { TOKEN_MINTER: 'TokenMinter' },
    bindings: env,
    ...extra,
  });
  const elsewhere = { TOKEN_MINTER: { className: 'TokenMinter', scriptName: 'minter' } };
  const minter = minterScript
    ? { name: 'minter', modules: true, script: minterScript, compatibilityDate: WORKERD_MODULES.compatibilityDate }
    : whole('minter');
  const main = split
    ? whole('main', { scriptPath: join(root, 'src', 'cloudflare', 'front-split.js'), durableObjects: elsewhere, ...rest })
    : whole('main', { ...(minterScript ? { durableObjects: elsewhere } : {}), ...rest });
  const workers = minterScript || split ? { workers: [main, minter] } : main;
  const mf = new Miniflare({
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.on('data', (chunk) => {
          logs.push(...String(chunk).split('\n').filter(Boolean));
          if (process.env.WORKER_LOG) process.stdout.write(chunk);
        });
      }
    },
    cf: false,
    // WORKER_LOG=1 shows the Worker's console output.
    ...(process.env.WORKER_LOG ? { log: new Log(LogLevel.DEBUG) } : {}),
    ...workers,
  });
  const url = await mf.ready;
  const call = (path, init = {}) => mf.dispatchFetch(`http://worker.test${path}`, init);
  return { mf, url, call, logs, close: () => mf.dispose() };
}

/** The token record in KV, with its key and expiration, once the minter's copy has landed (it
 * is written after the answer): polls for up to 2 s, then `null`. */
export async function storedRecord(mf) {
  for (const until = Date.now() + 2_000; ; await sleep(20)) {
    const rec = await kvRecord(mf);
    if (rec !== null || Date.now() > until) return rec;
  }
}

async function kvRecord(mf) {
  const kv = await mf.getKVNamespace('AUTOPAY_TOKENS');
  const { keys } = await kv.list();
  if (keys.length === 0) return null;
  return { key: keys[0].name, expiration: keys[0].expiration, value: await kv.get(keys[0].name) };
}

/** Registers the usual hooks: one emulator for the file; before each test a reset emulator and
 * a fresh Worker. Returns an object whose `emu` and `w` are the current ones. */
export function useWorker() {
  const ctx = { emu: null, w: null };
  before(async () => (ctx.emu = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })));
  after(() => ctx.emu.close());
  beforeEach(async () => {
    await ctx.emu.post('/__emulator/reset');
    ctx.w = await startWorker(ctx.emu);
  });
  afterEach(() => ctx.w.close());
  return ctx;
}

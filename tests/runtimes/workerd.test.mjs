// A plain JavaScript Cloudflare Worker that imports the package (`workerd` export condition,
// the .wasm as a CompiledWasm module, as wrangler bundles it) and uses a real KV binding, in
// workerd through Miniflare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { consumer, run, bin, startEmulator } from './helpers.mjs';

let emu, mf;
before(async () => {
  const dir = consumer();
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  await run(
    bin('esbuild'),
    ['worker.mjs', '--bundle', '--format=esm', '--conditions=workerd,worker,browser', '--loader:.wasm=copy', '--outdir=dist-worker', '--log-level=warning'],
    { cwd: dir },
  );
  mf = new Miniflare({
    scriptPath: join(dir, 'dist-worker', 'worker.js'),
    modulesRoot: join(dir, 'dist-worker'),
    modules: true,
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-20',
    kvNamespaces: ['TOKENS'],
    bindings: { TOKEN_URL: emu.tokenUrl },
    cf: false,
  });
  await mf.ready;
});
after(async () => {
  await mf?.dispose();
  await emu?.close();
});

test('gets a token, then a memory hit, then a KV hit for a new client', async () => {
  const first = await (await mf.dispatchFetch('http://worker.test/')).json();
  const second = await (await mf.dispatchFetch('http://worker.test/')).json();
  const fresh = await (await mf.dispatchFetch('http://worker.test/?fresh')).json();
  assert.deepEqual([first.source, second.source, fresh.source], ['network', 'memory', 'kv']);
  assert.ok(first.token === second.token && second.token === fresh.token);
  assert.equal(emu.stats().minted, 1);
  const { keys } = await (await mf.getKVNamespace('TOKENS')).list();
  assert.equal(keys.length, 1);
  assert.match(keys[0].name, /^autopay-auth:v1:/);
});

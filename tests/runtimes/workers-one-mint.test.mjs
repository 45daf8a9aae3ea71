// One mint for a Cloudflare Worker of your own (examples/runtimes/cloudflare-worker-one-mint.mjs,
// bundled as wrangler bundles it): two Worker scripts — two isolates, each with its own module
// state and its own client — bound to the same Durable Object (`AutopayAuthStore`, exported by
// the package) in workerd through Miniflare. 300 concurrent cold calls across them make one token
// request. The same two Workers on Workers KV alone, which cannot lock, measured beside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { consumer, run, bin, root, startEmulator } from './helpers.mjs';
import { WORKERD_MODULES } from '../worker/helpers.mjs';

let emu, dir;
before(async () => {
  dir = consumer();
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  copyFileSync(join(root, 'examples', 'runtimes', 'cloudflare-worker-one-mint.mjs'), join(dir, 'one-mint-worker.mjs'));
  // the same Worker on Workers KV alone (the README's row it replaces)
  writeFileSync(
    join(dir, 'kv-only-worker.mjs'),
    "import { AutopayAuth } from 'autopay-auth';\nlet auth;\nexport default { async fetch(r, env) { auth ??= new AutopayAuth({ clientId: env.AUTOPAY_CLIENT_ID, clientSecret: env.AUTOPAY_CLIENT_SECRET, tokenUrl: env.AUTOPAY_TOKEN_URL, kv: env.AUTOPAY_TOKENS, logger: null }); const { source, expiresAt } = await auth.getTokenInfo(); return Response.json({ source, expiresAt }); } };\n",
  );
  // the store contract, checked inside workerd against the object
  writeFileSync(
    join(dir, 'conformance-worker.mjs'),
    "import { checkStore } from 'autopay-auth/conformance';\nimport { durableObjectKV } from 'autopay-auth/cloudflare';\nexport { AutopayAuthStore } from 'autopay-auth/cloudflare';\nexport default { async fetch(r, env) { try { return Response.json({ kept: await checkStore(durableObjectKV(env.AUTOPAY_STORE)) }); } catch (e) { return Response.json({ broken: String(e) }, { status: 500 }); } } };\n",
  );
  for (const f of ['one-mint-worker', 'kv-only-worker', 'conformance-worker']) {
    await run(
      bin('esbuild'),
      [`${f}.mjs`, '--bundle', '--format=esm', '--conditions=workerd,worker,browser', '--loader:.wasm=copy', '--external:cloudflare:workers', `--outdir=dist-${f}`, '--log-level=warning'],
      { cwd: dir },
    );
  }
});
after(() => emu?.close());

const env = () => ({ AUTOPAY_CLIENT_ID: 'runtime-client', AUTOPAY_CLIENT_SECRET: 'runtime-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl });

/** Two Worker scripts from one bundle, `a` and `b`: each its own isolate and module state. */
function twoWorkers(bundle, extraA, extraB) {
  const worker = (name, extra) => ({
    name,
    scriptPath: join(dir, `dist-${bundle}`, `${bundle}.js`),
    modulesRoot: join(dir, `dist-${bundle}`),
    ...WORKERD_MODULES,
    bindings: env(),
    ...extra,
  });
  return new Miniflare({ workers: [worker('a', extraA), worker('b', extraB)], cf: false });
}

/** 300 concurrent cold calls, half to each Worker: their answers, and the token requests. */
async function burst(mf) {
  await emu.post('/__emulator/reset');
  emu.fault({ delayMs: 200 }); // the first token request is still out when the others arrive
  const [a, b] = [await mf.getWorker('a'), await mf.getWorker('b')];
  const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).fetch('http://worker.test/')));
  const bodies = await Promise.all(answers.map((r) => r.json()));
  return { statuses: answers.map((r) => r.status), expiries: new Set(bodies.map((b) => b.expiresAt)).size, tokenRequests: emu.stats().tokenRequests };
}

test('a Worker of your own with the package\'s Durable Object: two Workers, 300 concurrent cold calls, one token request', async () => {
  const mf = twoWorkers(
    'one-mint-worker',
    { durableObjects: { AUTOPAY_STORE: 'AutopayAuthStore' } },
    { durableObjects: { AUTOPAY_STORE: { className: 'AutopayAuthStore', scriptName: 'a' } } },
  );
  try {
    const r = await burst(mf);
    console.log('# one mint for a Worker of your own:', JSON.stringify({ ...r, statuses: undefined }));
    assert.ok(r.statuses.every((s) => s === 200), JSON.stringify(r.statuses.filter((s) => s !== 200)));
    assert.equal(r.tokenRequests, 1);
    assert.equal(r.expiries, 1, 'one token for all');
  } finally {
    await mf.dispose();
  }
});

test('the same two Workers on Workers KV alone: KV shares the token but cannot lock — each cold isolate mints (measured)', async () => {
  const mf = twoWorkers('kv-only-worker', { kvNamespaces: { AUTOPAY_TOKENS: 'shared' } }, { kvNamespaces: { AUTOPAY_TOKENS: 'shared' } });
  try {
    const r = await burst(mf);
    console.log('# Workers KV alone, two cold isolates:', JSON.stringify({ ...r, statuses: undefined }));
    assert.ok(r.statuses.every((s) => s === 200));
    assert.equal(r.tokenRequests, 2, 'one per cold isolate');
  } finally {
    await mf.dispose();
  }
});

test('the package\'s Durable Object keeps the store contract, checked inside workerd: 50 claimers, fenced release, 1 s TTLs', async () => {
  const mf = new Miniflare({
    scriptPath: join(dir, 'dist-conformance-worker', 'conformance-worker.js'),
    modulesRoot: join(dir, 'dist-conformance-worker'),
    ...WORKERD_MODULES,
    durableObjects: { AUTOPAY_STORE: 'AutopayAuthStore' },
    cf: false,
  });
  try {
    const r = await mf.dispatchFetch('http://worker.test/');
    const body = await r.json();
    console.log('# the Durable Object store:', JSON.stringify(body));
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.kept.length, 7, body.kept.join('; '));
  } finally {
    await mf.dispose();
  }
});

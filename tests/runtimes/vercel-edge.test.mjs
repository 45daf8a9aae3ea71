// Vercel's Edge Runtime (`edge-runtime`, the runtime Vercel Edge Functions and `next dev` use):
// a Vercel Edge Function using the packed package's `edge-light` entry, bundled the way the
// platform bundles it — `*.wasm?module` becomes a WebAssembly.Module binding compiled outside
// the function, because code generation (compiling wasm from bytes included) is disabled inside.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { EdgeRuntime } from 'edge-runtime';
import { bundleVercelEdge, consumer, startEmulator } from './helpers.mjs';

let emu, code, wasm;
before(async () => {
  ({ code, wasm } = await bundleVercelEdge(consumer()));
  emu = await startEmulator({ clientId: 'edge-client', clientSecret: 'edge-secret' });
});
after(() => emu?.close());
beforeEach(() => emu.post('/__emulator/reset'));

// as on the platform: neither eval nor compiling wasm inside a function
const NO_CODE_GENERATION = { strings: false, wasm: false };

function edge(handed) {
  const module = new WebAssembly.Module(wasm); // the platform's binding, compiled outside
  return new EdgeRuntime({
    codeGeneration: NO_CODE_GENERATION,
    initialCode: code,
    extend(context) {
      context.__wasm_autopay_auth = module;
      context.process = { env: { AUTOPAY_CLIENT_ID: 'edge-client', AUTOPAY_CLIENT_SECRET: 'edge-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl } };
      // the platform's request context, where @vercel/functions' waitUntil hands its promise
      if (handed) context[Symbol.for('@vercel/request-context')] = { get: () => ({ waitUntil: (p) => handed.push(p) }) };
      return context;
    },
  });
}

test('the edge entry needs no wasm compilation: the function has none of it', (t) => {
  assert.ok(code.includes('__wasm_autopay_auth'), 'the wasm comes in as a module binding');
  assert.ok(!/WebAssembly\.(compile|instantiate)\(/.test(code), 'never compiled from bytes in the function');
  const gz = (b) => (gzipSync(b, { level: 9 }).length / 1024).toFixed(1);
  t.diagnostic(`edge function: ${(code.length / 1024).toFixed(1)} KiB of JS (${gz(Buffer.from(code))} KiB gzip) + the wasm module ${(wasm.length / 1024).toFixed(1)} KiB (${gz(wasm)} KiB gzip)`);
  const strict = new EdgeRuntime({ codeGeneration: NO_CODE_GENERATION });
  assert.throws(() => strict.evaluate('new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))'), 'which this runtime forbids, as the platform does');
});

test('a burst of 20 requests to one edge function mints once, then memory hits (wasm code generation disabled)', async () => {
  const runtime = edge();
  const answers = await Promise.all(Array.from({ length: 20 }, () => runtime.dispatchFetch('https://edge.test/')));
  assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200));
  const bodies = await Promise.all(answers.map((r) => r.json()));
  assert.equal(new Set(bodies.map((b) => b.expiresAt)).size, 1);
  assert.equal(emu.stats().minted, 1);
  const again = await (await runtime.dispatchFetch('https://edge.test/')).json();
  assert.equal(again.source, 'memory');
  assert.equal(emu.stats().tokenRequests, 1);
});

test('a background refresh is handed to @vercel/functions\' waitUntil, and lands', async () => {
  await emu.post('/__emulator/config', { expiresIn: 4 }); // stale after 3 s (± 0.2 s)
  const handed = [];
  const runtime = edge(handed);
  const first = await (await runtime.dispatchFetch('https://edge.test/')).json();
  assert.equal(first.source, 'network');
  assert.equal(handed.length, 0, 'a first mint is awaited, not handed off');
  await new Promise((r) => setTimeout(r, 3_400));
  const stale = await (await runtime.dispatchFetch('https://edge.test/')).json();
  assert.deepEqual([stale.source, stale.expiresAt], ['memory', first.expiresAt], 'the stale token is served at once');
  assert.equal(handed.length, 1, 'its refresh went to the platform\'s waitUntil');
  await Promise.all(handed);
  assert.equal(emu.stats().minted, 2);
  const after = await (await runtime.dispatchFetch('https://edge.test/')).json();
  assert.ok(after.expiresAt > first.expiresAt, 'the refreshed token is served next');
});

// Netlify Edge Functions: the example in examples/netlify, with the packed package installed,
// bundled by Netlify's own bundler (@netlify/edge-bundler, with the Deno from this repo's
// devDependencies) into the eszip Netlify deploys; then that eszip's exact module graph — the
// function, the npm package as the bundler vendored it, the import map, the stage-2 entry — is
// unpacked and run under Deno against the emulator: alone (each isolate mints its own token), and
// as a fleet of Deno processes sharing Upstash (a stand-in of its REST API over redis-server).
// Not covered offline: Netlify's runtime itself and its local dev server (both load
// https://edge.netlify.com), and reading each function's inline `config` (the same), so the
// manifest's routes come from netlify.toml or the deploy, not from this test.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { bundle } from '@netlify/edge-bundler';
import { installedProject } from '../js/helpers.mjs';
import { bin, lastJson, root, run, startEmulator, startRedis } from './helpers.mjs';
import { upstashStandIn } from './upstash-standin.mjs';

const app = join(root, 'target', 'netlify-app');
const reader = join(root, 'target', 'eszip-reader'); // the bundler's vendored eszip reader, out of node_modules
const out = join(app, 'unpacked');
const here = join(root, 'tests', 'runtimes', 'netlify');
let emu, eszip, modules, redis, upstash;

before(async () => {
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  cpSync(join(root, 'examples', 'netlify'), app, { recursive: true });
  cpSync(join(installedProject(), 'node_modules', 'autopay-auth'), join(app, 'node_modules', 'autopay-auth'), { recursive: true });
  // the site's other dependency, as `npm install` lays it out (its one dependency beside it)
  for (const dep of ['@upstash/redis', 'uncrypto']) cpSync(join(root, 'node_modules', dep), join(app, 'node_modules', dep), { recursive: true });
  rmSync(reader, { recursive: true, force: true });
  cpSync(join(root, 'node_modules', '@netlify', 'edge-bundler', 'deno', 'vendor'), reader, { recursive: true });
  // the bundler finds `deno` on the PATH (its own download would need the network)
  process.env.PATH = `${join(root, 'node_modules', '.bin')}:${process.env.PATH}`;
  const quiet = () => {}; // its notes on the config step, which cannot reach edge.netlify.com here
  const result = await bundle([join(app, 'netlify', 'edge-functions')], join(app, 'dist'), [], {
    basePath: app,
    cacheDirectory: join(app, '.cache'),
    systemLogger: quiet,
    userLogger: quiet,
  });
  assert.deepEqual(result.functions.map((f) => f.name), ['token']);
  eszip = join(app, 'dist', result.manifest.bundles[0].asset);
  mkdirSync(out, { recursive: true });
  const deno = ['run', '--no-config', `--import-map=${join(reader, 'import_map.json')}`, '--allow-read', '--allow-write'];
  ({ modules } = lastJson(await run(bin('deno'), [...deno, join(here, 'extract.ts'), eszip, out])));
  emu = await startEmulator({ clientId: 'netlify-client', clientSecret: 'netlify-secret' });
  redis = await startRedis(mkdtempSync(join(tmpdir(), 'autopay-auth-netlify-redis-')));
  const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;
  upstash = await upstashStandIn({ redisUrl: redis.url, redisModule, token: 'netlify-upstash-token', delayMs: 40 });
});
after(async () => {
  await upstash?.close();
  redis?.stop();
  await emu?.close();
});
beforeEach(() => emu.post('/__emulator/reset'));

test('Netlify\u2019s bundler vendors each entry of the package into one module, its wasm inside', (t) => {
  const vendored = modules.filter((m) => m.includes('/vendor/') && m.includes('autopay-auth')).map((m) => m.split('/').pop());
  assert.deepEqual(vendored.sort(), ['bundled-autopay-auth_standalone.js', 'bundled-autopay-auth_upstash.js'], modules.join(', '));
  const importMap = JSON.parse(readFileSync(join(out, 'import_map.json'), 'utf8'));
  assert.ok(importMap.imports['autopay-auth/standalone']?.includes('/vendor/'), 'the import resolves to the vendored module');
  const size = readFileSync(eszip).length;
  t.diagnostic(`eszip (function + vendored package): ${(size / 1024).toFixed(1)} KiB, ${(gzipSync(readFileSync(eszip), { level: 9 }).length / 1024).toFixed(1)} KiB gzip`);
  assert.ok(!readdirSync(join(app, 'dist')).some((f) => f.endsWith('.wasm')), 'no .wasm left to load beside it');
});

const netlifyEnv = () => ({ ...process.env, AUTOPAY_CLIENT_ID: 'netlify-client', AUTOPAY_CLIENT_SECRET: 'netlify-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl, NO_COLOR: '1' });
const deno = () => ['run', '--no-config', `--import-map=${join(out, 'import_map.json')}`, '--allow-read', '--allow-env', '--allow-net=127.0.0.1'];

test('the bundled function under Deno: a burst of 20 mints once, then a memory hit', async () => {
  const { burst, after: next } = lastJson(await run(bin('deno'), [...deno(), join(here, 'run.mjs'), out, '20'], { env: netlifyEnv() }));
  assert.equal(burst.length, 20);
  assert.equal(new Set(burst.map((b) => b.expiresAt)).size, 1, 'one token');
  assert.equal(next.source, 'memory');
  assert.equal(emu.stats().minted, 1);
});

test('with Upstash connected: four Deno processes running the bundle, a burst of 20 each, mint once between them', async () => {
  await redis.cli('flushall');
  const env = { ...netlifyEnv(), UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: upstash.token };
  const outs = await Promise.all([0, 1, 2, 3].map(() => run(bin('deno'), [...deno(), join(here, 'run.mjs'), out, '20'], { env })));
  const answers = outs.map(lastJson).flatMap((r) => [...r.burst, r.after]);
  assert.equal(answers.length, 84);
  assert.equal(new Set(answers.map((b) => b.expiresAt)).size, 1, 'one token for the four');
  assert.equal(emu.stats().tokenRequests, 1);
  assert.ok(answers.some((b) => b.source === 'kv'), 'the others took it from Upstash');
});

// Netlify Edge Functions: the example in examples/netlify, with the packed package installed,
// bundled by Netlify's own bundler (@netlify/edge-bundler, with the Deno from this repo's
// devDependencies) into the eszip Netlify deploys; then that eszip's exact module graph — the
// function, the npm package as the bundler vendored it, the import map, the stage-2 entry — is
// unpacked and run under Deno against the emulator.
// Not covered offline: Netlify's runtime itself and its local dev server (both load
// https://edge.netlify.com), and reading each function's inline `config` (the same), so the
// manifest's routes come from netlify.toml or the deploy, not from this test.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bundle } from '@netlify/edge-bundler';
import { installedProject } from '../js/helpers.mjs';
import { bin, lastJson, root, run, startEmulator } from './helpers.mjs';

const app = join(root, 'target', 'netlify-app');
const reader = join(root, 'target', 'eszip-reader'); // the bundler's vendored eszip reader, out of node_modules
const out = join(app, 'unpacked');
const here = join(root, 'tests', 'runtimes', 'netlify');
let emu, eszip, modules;

before(async () => {
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  cpSync(join(root, 'examples', 'netlify'), app, { recursive: true });
  cpSync(join(installedProject(), 'node_modules', 'autopay-auth'), join(app, 'node_modules', 'autopay-auth'), { recursive: true });
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
});
after(() => emu?.close());
beforeEach(() => emu.post('/__emulator/reset'));

test('Netlify\u2019s bundler vendors the package into one module, its wasm inside', (t) => {
  const vendored = modules.filter((m) => m.includes('/vendor/') && m.includes('autopay-auth'));
  assert.equal(vendored.length, 1, modules.join(', '));
  const importMap = JSON.parse(readFileSync(join(out, 'import_map.json'), 'utf8'));
  assert.ok(importMap.imports['autopay-auth/standalone']?.includes('/vendor/'), 'the import resolves to the vendored module');
  const size = readFileSync(eszip).length;
  t.diagnostic(`eszip (function + vendored package): ${(size / 1024).toFixed(1)} KiB, ${(gzipSync(readFileSync(eszip), { level: 9 }).length / 1024).toFixed(1)} KiB gzip`);
  assert.ok(!readdirSync(join(app, 'dist')).some((f) => f.endsWith('.wasm')), 'no .wasm left to load beside it');
});

test('the bundled function under Deno: a burst of 20 mints once, then a memory hit', async () => {
  const env = { ...process.env, AUTOPAY_CLIENT_ID: 'netlify-client', AUTOPAY_CLIENT_SECRET: 'netlify-secret', AUTOPAY_TOKEN_URL: emu.tokenUrl, NO_COLOR: '1' };
  const deno = ['run', '--no-config', `--import-map=${join(out, 'import_map.json')}`, '--allow-read', '--allow-env', '--allow-net=127.0.0.1'];
  const { burst, after: next } = lastJson(await run(bin('deno'), [...deno, join(here, 'run.mjs'), out, '20'], { env }));
  assert.equal(burst.length, 20);
  assert.equal(new Set(burst.map((b) => b.expiresAt)).size, 1, 'one token');
  assert.equal(next.source, 'memory');
  assert.equal(emu.stats().minted, 1);
});

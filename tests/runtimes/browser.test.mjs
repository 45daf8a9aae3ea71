// Headless Chromium (Debian's, driven by playwright-core), pages served from 127.0.0.1: the
// package loaded as an ES module through an import map, an esbuild bundle and a Vite bundle.
// Each refuses a client secret without `dangerouslyAllowBrowser`, and gets a token (CORS and
// preflight against the emulator), with a memory hit on the second call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { consumer, run, bin, serve, startEmulator } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let emu, dir, browser, server;

before(async () => {
  dir = consumer();
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
  const pkg = join(dir, 'node_modules', 'autopay-auth');
  // esbuild: bundle, and put the .wasm next to the bundle (it is fetched relative to it)
  mkdirSync(join(dir, 'dist-esbuild'), { recursive: true });
  await run(bin('esbuild'), ['browser-app.mjs', '--bundle', '--format=esm', '--platform=browser', '--target=es2022', '--outfile=dist-esbuild/app.js', '--log-level=warning'], { cwd: dir });
  copyFileSync(join(pkg, 'autopay_auth_bg.wasm'), join(dir, 'dist-esbuild', 'autopay_auth_bg.wasm'));
  // Vite: a one-page app; Vite emits the .wasm as an asset on its own
  mkdirSync(join(dir, 'vite-app'), { recursive: true });
  writeFileSync(join(dir, 'vite-app', 'index.html'), '<!doctype html><script type="module" src="../browser-app.mjs"></script>');
  writeFileSync(join(dir, 'vite.config.mjs'), "export default { root: 'vite-app', base: '/vite/', build: { target: 'es2022', outDir: '../dist-vite', emptyOutDir: true } };");
  await run(bin('vite'), ['build', '--logLevel', 'warn'], { cwd: dir });
  server = await serve(
    { '/pkg/': pkg, '/esbuild/': join(dir, 'dist-esbuild'), '/vite/': join(dir, 'dist-vite'), '/app/': dir },
    {
      '/module.html':
        '<!doctype html><script type="importmap">{"imports":{"autopay-auth":"/pkg/browser.mjs"}}</script>' +
        '<script type="module" src="/app/browser-app.mjs"></script>',
      '/esbuild.html': '<!doctype html><script type="module" src="/esbuild/app.js"></script>',
    },
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await emu?.close();
});

async function runPage(path) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`${server.origin}${path}?tokenUrl=${encodeURIComponent(emu.tokenUrl)}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 20_000 });
    return await page.evaluate(() => window.__result);
  } catch (e) {
    throw new Error(`${path}: ${e.message}\n${errors.join('\n')}`);
  } finally {
    await page.close();
  }
}

const expected = { refused: 'invalid_config:clientSecret', first: 'network', second: 'memory', same: true };

test('the package as an ES module (import map to pkg/browser.mjs)', async () => {
  assert.deepEqual(await runPage('/module.html'), expected);
});

test('an esbuild bundle', async () => {
  assert.deepEqual(await runPage('/esbuild.html'), expected);
});

test('a Vite bundle', async () => {
  assert.deepEqual(await runPage('/vite/index.html'), expected);
});

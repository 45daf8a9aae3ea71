// Deno (least permissions) and Bun, each importing the installed package by name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { consumer, run, bin, lastJson, startEmulator } from './helpers.mjs';

let emu, dir;
before(async () => {
  dir = consumer();
  emu = await startEmulator({ clientId: 'runtime-client', clientSecret: 'runtime-secret' });
});
after(() => emu.close());

const expected = { first: 'network', second: 'memory', same: true, refused: 'invalid_config:clientSecret' };

test('Deno, with only net access to the token endpoint and read access to the package', async () => {
  const host = new URL(emu.origin).host;
  const out = await run(
    bin('deno'),
    ['run', '--no-prompt', `--allow-net=${host}`, `--allow-read=${join(dir, 'node_modules', 'autopay-auth')}`, 'get-token.mjs', emu.tokenUrl],
    { cwd: dir, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } },
  );
  assert.deepEqual(lastJson(out), expected);
});

test('Deno without network permission fails with a typed network error, not a crash', async () => {
  const r = await (async () => {
    try {
      return await run(bin('deno'), ['run', '--no-prompt', `--allow-read=${join(dir, 'node_modules', 'autopay-auth')}`, 'get-token.mjs', emu.tokenUrl], {
        cwd: dir,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      });
    } catch (e) {
      return e.message;
    }
  })();
  assert.match(r, /AutopayAuthError: token request to 127\.0\.0\.1:\d+ failed: NotCapable/);
  assert.match(r, /Caused by: NotCapable: Requires net access/, 'the platform error is the cause');
});

test('Bun', async () => {
  const out = await run(bin('bun'), ['get-token.mjs', emu.tokenUrl], { cwd: dir });
  assert.deepEqual(lastJson(out), expected);
});

test('Node, from the consumer project (ESM entry by the node condition)', async () => {
  const out = await run(process.execPath, ['get-token.mjs', emu.tokenUrl], { cwd: dir });
  assert.deepEqual(lastJson(out), expected);
});

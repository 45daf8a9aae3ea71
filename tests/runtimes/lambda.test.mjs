// AWS Lambda, as its users ship it: examples/lambda/handler.mjs bundled the way CDK's
// NodejsFunction bundles (esbuild: one CommonJS file for Node, `@aws-sdk/*` left to the
// runtime), run from the bundle alone — a directory holding only the bundle and the AWS SDK, as
// Lambda's runtime has — in fresh processes (each a cold start), on a DynamoDB table (dynalite
// 0–80 ms away). The runtime stand-in (fixtures/lambda-runtime.mjs) freezes the process when the
// handler returns, as Lambda does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { consumer, root, startDynamo, startEmulator } from './helpers.mjs';
import { latencyProxy } from './latency-proxy.mjs';

let dir, scratch, emu, dynamo, proxy, bundle, tables = 0;

before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-auth-lambda-'));
  emu = await startEmulator({ clientId: 'lambda-client', clientSecret: 'lambda-secret' });
  dynamo = await startDynamo();
  proxy = await latencyProxy({ host: '127.0.0.1', port: dynamo.port }, { maxDelayMs: 80 });
  // the function's source in a project that depends on autopay-auth, bundled as CDK does
  copyFileSync(join(root, 'examples', 'lambda', 'handler.mjs'), join(dir, 'lambda-handler.mjs'));
  const fn = join(scratch, 'function');
  mkdirSync(join(fn, 'node_modules', '@aws-sdk'), { recursive: true });
  await build({
    entryPoints: [join(dir, 'lambda-handler.mjs')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    mainFields: ['module', 'main'],
    external: ['@aws-sdk/*'],
    outfile: join(fn, 'index.js'),
    logLevel: 'error',
  });
  // what Lambda's Node.js runtime provides beside the bundle: the AWS SDK, and nothing else
  symlinkSync(join(root, 'node_modules', '@aws-sdk', 'client-dynamodb'), join(fn, 'node_modules', '@aws-sdk', 'client-dynamodb'), 'dir');
  bundle = join(fn, 'index.js');
  copyFileSync(join(root, 'tests', 'runtimes', 'fixtures', 'lambda-runtime.mjs'), join(fn, 'runtime.mjs'));
});

after(async () => {
  await proxy?.close();
  await dynamo?.close();
  await emu?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A fresh table and a fresh token service: `{ table }`. */
async function fresh() {
  await emu.post('/__emulator/reset');
  const table = `tokens-${++tables}`;
  await dynamo.createTable(table);
  return table;
}

/** One execution environment: a fresh process (a cold start) that runs `invocations`; resolves
 * to its lines, calling `onLine` as each arrives. */
function environment(table, invocations, { freezeMs = 0, onLine = () => {} } = {}) {
  const env = {
    PATH: process.env.PATH,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'lambda',
    AWS_SECRET_ACCESS_KEY: 'lambda',
    AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${proxy.port}`,
    AUTOPAY_CLIENT_ID: 'lambda-client',
    AUTOPAY_CLIENT_SECRET: 'lambda-secret',
    AUTOPAY_TOKEN_URL: emu.tokenUrl,
    AUTOPAY_API_BASE: emu.origin,
    AUTOPAY_TOKENS_TABLE: table,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['runtime.mjs', JSON.stringify({ bundle, invocations, freezeMs })], { cwd: join(scratch, 'function'), env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let buf = '';
    let err = '';
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
        // the runtime's report of each invocation (the function's own log lines pass by)
        if (!buf.startsWith('{"invocation"')) continue;
        const line = JSON.parse(buf.slice(0, i));
        lines.push(line);
        onLine(line);
      }
    });
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(lines) : reject(new Error(`exit ${code}: ${err}`));
    });
  });
}

test('the bundle is one file that carries its wasm: nothing is read from beside it', () => {
  assert.deepEqual(readdirSync(join(scratch, 'function')).sort(), ['index.js', 'node_modules', 'runtime.mjs']);
  const code = readFileSync(bundle, 'utf8');
  assert.ok(!/autopay_auth_bg\.wasm/.test(code), 'no .wasm file named in the bundle');
  assert.ok(!existsSync(join(scratch, 'function', 'autopay_auth_bg.wasm')));
});

test("bundled, the default entry says at once what went wrong and what to import instead", async () => {
  const out = join(scratch, 'default-entry.cjs');
  await build({ stdin: { contents: "require('autopay-auth');", resolveDir: dir }, bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'error' });
  const err = await new Promise((resolve) => {
    const child = spawn(process.execPath, [out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr.on('data', (d) => (text += d));
    child.on('close', () => resolve(text));
  });
  assert.match(err, /autopay-auth: its WebAssembly module is not where the package put it/);
  assert.match(err, /autopay-auth\/standalone/);
});

test('cold starts one after another, then ten at once: one mint, every invocation answered', { timeout: 120_000 }, async () => {
  const table = await fresh();
  const one = [{ afterMs: 0 }];
  const sequential = [];
  for (let i = 0; i < 5; i++) sequential.push(...(await environment(table, one)));
  const together = (await Promise.all(Array.from({ length: 10 }, () => environment(table, one)))).flat();
  const all = [...sequential, ...together];
  console.log('# lambda cold starts:', JSON.stringify({ invocations: all.length, tokenRequests: emu.stats().tokenRequests, loadMs: all.map((l) => l.loadedMs) }));
  assert.deepEqual(all.map((l) => l.statusCode), Array(15).fill(200));
  assert.ok(all.every((l) => l.body.ok === true && l.body.path === '/v1/ping'), JSON.stringify(all[0]));
  assert.equal(emu.stats().tokenRequests, 1);
  assert.equal(emu.stats().apiUnauthorized, 0);
  // the table holds the sealed record, never the secret
  const values = await dynamo.values(table);
  assert.ok(values.length >= 1 && values.every((v) => !v.value.includes('lambda-secret')));
});

test('Lambda freezes the process when the handler returns: the refresh of a stale token is done before it does', { timeout: 120_000 }, async () => {
  const table = await fresh();
  emu.setExpiresIn(20); // stale after 15 s (±1 s), never served past 18 s
  emu.fault({}, { delayMs: 800 }); // the refresh's token request takes 0.8 s
  let atSecondReturn;
  const lines = await environment(table, [{ afterMs: 0 }, { afterMs: 15_500 }], {
    freezeMs: 1_000,
    // read while the process is frozen: whatever the handler left running cannot move now
    onLine: (l) => {
      if (l.invocation === 1) atSecondReturn = emu.stats().tokenRequests;
    },
  });
  assert.deepEqual(lines.map((l) => l.statusCode), [200, 200]);
  assert.equal(atSecondReturn, 2, 'the stale token was replaced inside the invocation that found it stale');
});

// A fleet sharing one DPoP-bound token: separate Node processes (no shared memory) on one
// Redis, each given the fleet's DPoP key, bursting API calls at one instant and then spread,
// against oidc-provider requiring DPoP nonces and a resource server that verifies every proof —
// once with every process running, once with one process frozen (SIGSTOP) for a while mid-run.
// One token is minted for the whole fleet; every call is made with a proof of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { consumer, lastJson, root, startRedis } from './helpers.mjs';
import { dpopKey, startBoundProvider, startResourceServer } from '../oidc/bound.mjs';

const redisModule = pathToFileURL(createRequire(join(root, 'package.json')).resolve('redis')).href;
let dir, scratch, redis, as, rs, key;
before(async () => {
  dir = consumer();
  scratch = mkdtempSync(join(tmpdir(), 'autopay-dpop-fleet-'));
  redis = await startRedis(scratch);
  as = await startBoundProvider();
  rs = await startResourceServer(as);
  key = await dpopKey('ES256');
});
after(async () => {
  redis?.stop();
  await Promise.all([as?.close(), rs?.close()]);
  rmSync(scratch, { recursive: true, force: true });
});

/** Starts one process; resolves to its last JSON line (bounded at 60 s). */
function instance(startAt, spreadMs) {
  const args = ['dpop-process.mjs', as.tokenUrl, rs.url, redis.url, String(startAt), redisModule, JSON.stringify(key.jwk), String(spreadMs)];
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(lastJson(out));
      else reject(new Error(`dpop-process exited ${code}\n${out}\n${err}`));
    });
  });
  return { child, done };
}

async function round({ processes, freeze }) {
  await redis.cli('flushall');
  as.reset();
  const before = { proofs: rs.stats.proofsVerified, ok: rs.stats.ok };
  const startAt = Date.now() + 1_500;
  const fleet = Array.from({ length: processes }, () => instance(startAt, 2_000));
  if (freeze) {
    // one process frozen at the start instant, mid-burst, and thawed three seconds later
    setTimeout(() => fleet[0].child.kill('SIGSTOP'), startAt - Date.now() + 5);
    setTimeout(() => fleet[0].child.kill('SIGCONT'), startAt - Date.now() + 3_000);
  }
  const results = await Promise.all(fleet.map((f) => f.done));
  const calls = results.reduce((n, r) => n + Object.values(r.statuses).reduce((a, b) => a + b, 0), 0);
  return {
    results,
    calls,
    failures: results.flatMap((r) => r.failures),
    ok: results.reduce((n, r) => n + (r.statuses[200] ?? 0), 0),
    tokens: new Set(results.map((r) => r.token)),
    mints: results.reduce((n, r) => n + r.stats.mints, 0),
    proofs: rs.stats.proofsVerified - before.proofs,
  };
}

for (const [name, freeze] of [['every process running', false], ['one process frozen mid-burst (SIGSTOP, 3 s)', true]]) {
  test(`four processes share one DPoP-bound token: ${name}`, async () => {
    const r = await round({ processes: 4, freeze });
    assert.deepEqual(r.failures, [], 'no caller failed');
    assert.equal(r.calls, 4 * 30);
    assert.equal(r.ok, 4 * 30, JSON.stringify(r.results.map((x) => x.statuses)));
    assert.equal(as.stats.issued, 1, 'one token for the fleet');
    assert.equal(r.mints, 1);
    assert.equal(r.tokens.size, 1, 'every process used the same token');
    assert.equal(r.proofs, 4 * 30, 'every call carried its own verified proof');
    // the provider's nonce: asked for once, then the minting process sent it
    assert.equal(as.stats.requests, 2);
    console.log(`# DPoP fleet (${name}): ${r.calls} calls from 4 processes, ${as.stats.requests} token requests (1 nonce challenge), ${as.stats.issued} token, ${r.proofs} proofs verified`);
  });
}

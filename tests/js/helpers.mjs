// Shared by the node:test suites: the packed package (installed into a temporary project, as
// a user would install it) and an emulator per test file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

import { before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../emulator/server.mjs';

export { startEmulator };

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A temporary project with the packed pkg/ installed. Reused across files via AUTOPAY_TEST_PROJECT. */
let project;
export function installedProject() {
  const existing = project ?? process.env.AUTOPAY_TEST_PROJECT;
  if (existing && existsSync(join(existing, 'node_modules', 'autopay-auth'))) return existing;
  const dir = mkdtempSync(join(tmpdir(), 'autopay-auth-consumer-'));
  execFileSync('npm', ['pack', join(root, 'pkg'), '--pack-destination', dir, '--silent'], { stdio: 'pipe' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(dir, tarball)], { cwd: dir, stdio: 'pipe' });
  // the stores' clients the adapters wrap: optional peers, which npm leaves to the user — here
  // the workspace's own copies, linked (they resolve their dependencies from there); Node's
  // types, which a Lambda project has (the AWS SDK's own types need them); and the Vercel
  // example's `@vercel/functions`
  for (const peer of ['@upstash/redis', '@aws-sdk/client-dynamodb', '@types/node', '@vercel/functions']) {
    mkdirSync(dirname(join(dir, 'node_modules', peer)), { recursive: true });
    symlinkSync(join(root, 'node_modules', peer), join(dir, 'node_modules', peer), 'dir');
  }
  project = dir;
  return dir;
}

/** `import "autopay-auth"` as resolved from the consumer project (ESM, `node` condition). */
export async function importPackage() {
  const dir = installedProject();
  const entry = join(dir, 'reexport.mjs');
  if (!existsSync(entry)) writeFileSync(entry, "export * from 'autopay-auth';\n");
  return import(pathToFileURL(entry).href);
}

/** `require("autopay-auth")` as resolved from the consumer project. */
export function requirePackage() {
  return createRequire(join(installedProject(), 'package.json'))('autopay-auth');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Registers a package suite's hooks: the packed package imported once, one emulator for the
 * file (client `cid` with `clientSecret`), reset before each test. `bind` receives
 * `{ emu, AutopayAuth, AutopayAuthError, MemoryKV }` once they exist. */
export function usePackage(clientSecret, bind) {
  let emu;
  before(async () => {
    const pkg = await importPackage();
    emu = await startEmulator({ clientId: 'cid', clientSecret });
    bind({ ...pkg, emu });
  });
  after(() => emu.close());
  beforeEach(() => emu.post('/__emulator/reset'));
}

/** What `promise` rejects with; fails the test when it fulfils. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

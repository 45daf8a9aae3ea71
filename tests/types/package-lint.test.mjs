// The packed package as registries and type checkers see it: publint --strict and
// @arethetypeswrong/cli (attw --pack) both clean, and the licences and changelog in the tarball.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = join(root, 'pkg');

test('publint --strict finds nothing', async () => {
  const { messages, pkg: manifest } = await publint({ pkgDir: pkg, strict: true });
  assert.deepEqual(messages.map((m) => formatMessage(m, manifest)), []);
});

test('attw --pack finds no problem in any entry, for any resolution mode', () => {
  // attw exits non-zero on a problem; its JSON lists problems by kind
  const out = execFileSync(join(root, 'node_modules', '.bin', 'attw'), ['--pack', pkg, '--format', 'json'], { encoding: 'utf8' });
  const { problems, analysis } = JSON.parse(out);
  const found = Array.isArray(problems) ? problems : Object.values(problems ?? {}).flat();
  assert.deepEqual(found, []);
  assert.deepEqual(Object.keys(analysis.entrypoints).sort(), ['.', './cloudflare', './conformance', './deno-kv', './dynamodb', './package.json', './postgres', './redis', './standalone', './upstash']);
});

test('the tarball carries the licences, the changelog and the README', () => {
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', pkg], { encoding: 'utf8' }));
  const files = packed.files.map((f) => f.path);
  for (const f of ['LICENSE-MIT', 'LICENSE-APACHE', 'CHANGELOG.md', 'README.md', 'package.json', 'autopay_auth_bg.wasm']) {
    assert.ok(files.includes(f), `${f} is packed (${files.join(', ')})`);
  }
  assert.equal(packed.name, 'autopay-auth');
});

test('no dependency of its own: the stores\' clients are optional peers, and the install is one package', (t) => {
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.equal(manifest.dependencies, undefined);
  assert.deepEqual(Object.keys(manifest.peerDependencies).sort(), ['@aws-sdk/client-dynamodb', '@upstash/redis', 'pg', 'postgres']);
  assert.ok(Object.values(manifest.peerDependenciesMeta).every((m) => m.optional === true));
  // an adapter imports its client's package, never bundles it
  for (const f of ['upstash.js', 'dynamodb.js', 'upstash.cjs', 'dynamodb.cjs']) {
    const code = readFileSync(join(pkg, f), 'utf8');
    assert.ok(code.length < 8_000, `${f} is the adapter alone (${code.length} bytes)`);
  }
  assert.match(readFileSync(join(pkg, 'dynamodb.js'), 'utf8'), /from '@aws-sdk\/client-dynamodb'/);
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', pkg], { encoding: 'utf8' }));
  t.diagnostic(`npm install autopay-auth: 1 package, ${packed.entryCount} files, ${(packed.unpackedSize / 1024).toFixed(1)} KiB installed (${(packed.size / 1024).toFixed(1)} KiB packed)`);
});

test('no invented links: the manifest has no repository, homepage or bugs, and no packed file points at a repository', () => {
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  for (const field of ['repository', 'homepage', 'bugs']) assert.equal(manifest[field], undefined, field);
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', pkg], { encoding: 'utf8' }));
  for (const { path } of packed.files.filter((f) => /\.(md|json|js|mjs|cjs|d\.ts|d\.cts)$/.test(f.path))) {
    const text = readFileSync(join(pkg, path), 'utf8');
    const links = text.match(/https?:\/\/(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org)\/[^\s)"'`]*/g) ?? [];
    assert.deepEqual(links, [], `${path} points at a repository`);
    assert.ok(!/\bthis repository\b/i.test(text), `${path} speaks of "this repository" without naming it`);
  }
});

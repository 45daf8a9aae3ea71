// The README's code is tested: every JavaScript/TypeScript block is exactly a file under
// examples/readme/, and those files compile under `tsc --strict` against the packed package
// (the Node one with Node's types, the Worker one on its own); every Rust block is a cargo
// example (built, and run against the emulator, by tests/native.rs); every shell block only runs
// npm scripts and files that exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consumer, run, bin } from '../runtimes/helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// the README and the pages beside it: every block of code in any of them
const DOCS = ['README.md', 'RECIPES.md', 'REFERENCE.md', 'DEPLOY.md', 'CONTRIBUTING.md', 'RELIABILITY.md', 'js/README.md'];
const blocks = DOCS.flatMap((doc) =>
  [...readFileSync(join(root, doc), 'utf8').matchAll(/(?:<!-- example: (\S+)[^\n]*-->\n)?```(\w*)\n([\s\S]*?)\n```/g)].map((m) => ({
    doc,
    file: m[1],
    lang: m[2],
    code: m[3],
  })),
);

test('every JavaScript or TypeScript block is a file under examples/readme/, word for word', () => {
  const code = blocks.filter((b) => ['js', 'ts', 'mjs', 'mts'].includes(b.lang));
  assert.ok(code.length >= 6, `found ${code.length} blocks`);
  for (const b of code) {
    assert.ok(b.file, `${b.doc}: a block without its example file:\n${b.code.slice(0, 200)}`);
    assert.equal(b.code, readFileSync(join(root, b.file), 'utf8').replace(/\n$/, ''), `${b.doc}: ${b.file} drifted from its file`);
  }
});

test('every Rust block is a Rust example of the crate, word for word (cargo builds and the tests run it)', () => {
  const rust = blocks.filter((b) => b.lang === 'rust');
  assert.ok(rust.length >= 1, `found ${rust.length} blocks`);
  for (const b of rust) {
    assert.ok(b.file?.startsWith('examples/') && b.file.endsWith('.rs'), `${b.doc}: a Rust block without its example file`);
    assert.equal(b.code, readFileSync(join(root, b.file), 'utf8').replace(/\n$/, ''), `${b.doc}: ${b.file} drifted from its file`);
  }
});

test('the examples compile under tsc --strict against the packed package', async () => {
  const dir = consumer();
  cpSync(join(root, 'examples', 'readme'), join(dir, 'readme'), { recursive: true });
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  for (const dep of ['redis', '@redis', '@types/node', 'undici-types', '@upstash/redis', '@aws-sdk/client-dynamodb', 'pino', '@opentelemetry/api', 'pg', '@types/pg', 'pg-types', 'pg-protocol']) {
    const target = join(dir, 'node_modules', dep);
    mkdirSync(dirname(target), { recursive: true });
    if (existsSync(join(root, 'node_modules', dep)) && !existsSync(target)) symlinkSync(join(root, 'node_modules', dep), target);
  }
  const files = readdirSync(join(dir, 'readme')).map((f) => `readme/${f}`);
  const config = join(dir, 'tsconfig.readme.json');
  writeFileSync(config, JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'node16', moduleResolution: 'node16', target: 'es2022', lib: ['esnext', 'dom'], types: ['node'], noUnusedLocals: false },
    files,
  }));
  try {
    await run(bin('tsc'), ['-p', config]);
  } catch (e) {
    assert.fail(e.message);
  }
});

test('every shell block runs only npm scripts and files that exist', () => {
  const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts;
  const shell = blocks.filter((b) => b.lang === 'sh');
  assert.ok(shell.length >= 5);
  for (const b of shell) {
    for (const line of b.code.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)) {
      const npmRun = /^npm run ([\w:-]+)/.exec(line);
      if (npmRun) assert.ok(scripts[npmRun[1]], `npm run ${npmRun[1]} is a script`);
      if (/^npm test\b/.test(line)) assert.ok(scripts.test);
      const script = /^(?:bash|node) ((?:scripts|examples|tests)\/\S+)/.exec(line);
      if (script) assert.ok(existsSync(join(root, script[1])), `${script[1]} exists`);
      const example = /^(?:node|bun|deno run .*) (\S+\.mjs)$/.exec(line);
      if (example) assert.ok(existsSync(join(root, 'examples', 'runtimes', example[1])), `examples/runtimes/${example[1]} exists`);
    }
  }
});

test('the options tables name every option of index.d.ts: REFERENCE.md\'s row by row, the package README\'s in its list', () => {
  const dts = readFileSync(join(root, 'js', 'index.d.ts'), 'utf8');
  // the common options and both kinds of credentials (a `never` member is the other kind's)
  const options = [...new Set(['AutopayAuthCommonOptions', 'SecretCredentials', 'KeyCredentials'].flatMap((name) => {
    const body = dts.slice(dts.indexOf(`export interface ${name}`));
    return [...body.slice(0, body.indexOf('\n}')).matchAll(/^  (\w+)\??: (?!never)/gm)].map((m) => m[1]);
  }))].sort();
  assert.ok(options.length >= 20 && options.includes('loggerArgs') && options.includes('waitUntil'), options.join());
  const reference = readFileSync(join(root, 'REFERENCE.md'), 'utf8');
  const table = reference.slice(reference.indexOf('### Options of `new AutopayAuth(options)`'), reference.indexOf('### Methods of `AutopayAuth`'));
  const rows = [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(rows, options, 'REFERENCE.md: one row per option, no more');
  const pkg = readFileSync(join(root, 'js', 'README.md'), 'utf8');
  const list = pkg.slice(pkg.indexOf('Options:'), pkg.indexOf('Error\ncodes') > 0 ? pkg.indexOf('Error\ncodes') : undefined);
  assert.deepEqual(options.filter((o) => !list.includes(`\`${o}\``)), [], 'js/README.md lists every option');
});

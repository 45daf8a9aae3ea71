// The package's TypeScript declarations compile for small consumers with `tsc --strict` under
// `module: node16` (ESM .mts and CommonJS .cts) and `moduleResolution: bundler`. The consumers
// carry `@ts-expect-error` lines, so declarations that were too loose would fail too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consumer, run, bin } from '../runtimes/helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function project(dir, name, compilerOptions, files) {
  const path = join(dir, `tsconfig.${name}.json`);
  writeFileSync(path, JSON.stringify({ compilerOptions: { strict: true, noEmit: true, lib: ['esnext', 'dom'], types: ['node'], skipLibCheck: false, ...compilerOptions }, files }));
  return path;
}

async function tsc(config) {
  try {
    await run(bin('tsc'), ['-p', config]);
  } catch (e) {
    assert.fail(e.message);
  }
}

test('module node16: ESM and CommonJS consumers', async () => {
  const dir = consumer();
  for (const f of ['consumer-esm.mts', 'consumer-cjs.cts']) copyFileSync(join(here, f), join(dir, f));
  await tsc(project(dir, 'node16', { module: 'node16', moduleResolution: 'node16', target: 'es2022' }, ['consumer-esm.mts', 'consumer-cjs.cts']));
});

test('moduleResolution bundler', async () => {
  const dir = consumer();
  copyFileSync(join(here, 'consumer-esm.mts'), join(dir, 'consumer-bundler.ts'));
  await tsc(project(dir, 'bundler', { module: 'esnext', moduleResolution: 'bundler', target: 'es2022' }, ['consumer-bundler.ts']));
});

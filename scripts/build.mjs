// Builds the npm package into pkg/: cargo (wasm32, feature `npm`) → wasm-bindgen (web ESM glue:
// the one glue every entry shares) → wasm-opt (npm binaryen) → entry files, types and
// package.json from js/. Skips the Rust steps when nothing they read has changed.
//
// One copy of each thing: the CommonJS entries are `require(esm)` of the ESM ones (Node >= 22.12,
// Bun), so the glue, the wrapper and the types exist once; the `standalone` entry carries the
// wasm deflated (base64), inflated by fflate's inflateSync bundled into it.
import { execFileSync } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = join(root, 'pkg');
const gen = join(root, 'target', 'npm-bindgen');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });

const wantBindgen = readFileSync(join(root, 'Cargo.toml'), 'utf8').match(/wasm-bindgen = \{ version = "=([^"]+)"/)[1];
const haveBindgen = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).trim().split(' ')[1];
if (haveBindgen !== wantBindgen) {
  throw new Error(`wasm-bindgen CLI ${haveBindgen} does not match the crate's ${wantBindgen}; run scripts/setup.sh`);
}

run('cargo', ['build', '--lib', '--release', '--target', 'wasm32-unknown-unknown', '--features', 'npm']);
const wasm = join(root, 'target', 'wasm32-unknown-unknown', 'release', 'autopay_auth.wasm');

const stamp = join(gen, 'stamp');
const fresh = existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(wasm).mtimeMs;
if (!fresh) {
  rmSync(gen, { recursive: true, force: true });
  run('wasm-bindgen', ['--target', 'web', '--out-dir', join(gen, 'web'), '--out-name', 'autopay_auth', wasm]);
  run(bin('wasm-opt'), ['-Oz', '--enable-bulk-memory', '--enable-reference-types', '--enable-nontrapping-float-to-int',
    '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue',
    join(gen, 'web', 'autopay_auth_bg.wasm'), '-o', join(gen, 'autopay_auth_bg.wasm')]);
  writeFileSync(stamp, '');
}

rmSync(pkg, { recursive: true, force: true });
mkdirSync(pkg);
copyFileSync(join(gen, 'autopay_auth_bg.wasm'), join(pkg, 'autopay_auth_bg.wasm'));
copyFileSync(join(gen, 'web', 'autopay_auth.js'), join(pkg, 'autopay_auth.js'));
for (const f of readdirSync(join(root, 'js', 'entries'))) copyFileSync(join(root, 'js', 'entries', f), join(pkg, f));
for (const f of ['api.js', 'memory-kv.js']) copyFileSync(join(root, 'js', f), join(pkg, f));
// each adapter as ESM, with `require` getting the same module (require(esm)), and types for both
copyFileSync(join(root, 'js', 'adapters', 'redis-commands.js'), join(pkg, 'redis-commands.js'));
for (const f of ['redis', 'deno-kv', 'upstash', 'dynamodb', 'postgres', 'cloudflare', 'conformance']) {
  const types = readFileSync(join(root, 'js', 'adapters', `${f}.d.ts`), 'utf8');
  copyFileSync(join(root, 'js', 'adapters', `${f}.js`), join(pkg, `${f}.js`));
  writeFileSync(join(pkg, `${f}.d.ts`), types);
  writeFileSync(join(pkg, `${f}.cjs`), `'use strict';\n// \`require('autopay-auth/${f}')\`: the ESM adapter itself (require(esm), Node >= 22.12 and Bun)\nmodule.exports = require('./${f}.js');\n`);
  writeFileSync(join(pkg, `${f}.d.cts`), types.replace("'./index.js'", "'./index.cjs'"));
}
// the loader-free entry: the wasm inside the JS, deflated and base64 (wasm-deflated.cjs, CommonJS
// so that any bundler takes it), inflated at import by fflate's inflateSync (bundled in: the
// platforms' DecompressionStream is asynchronous, and `require` cannot wait); `require` gets the
// same module (standalone.cjs)
const deflated = deflateRawSync(readFileSync(join(pkg, 'autopay_auth_bg.wasm')), { level: 9 }).toString('base64');
writeFileSync(join(pkg, 'wasm-deflated.cjs'), `// autopay_auth_bg.wasm, deflated (raw), base64 (for autopay-auth/standalone)\nmodule.exports = '${deflated}';\n`);
run(bin('esbuild'), [join(pkg, 'standalone.js'), '--bundle', '--format=esm', '--platform=neutral', '--log-level=warning', '--allow-overwrite',
  '--external:./autopay_auth.js', '--external:./api.js', '--external:./memory-kv.js', '--external:./wasm-deflated.cjs', `--outfile=${join(pkg, 'standalone.js')}`],
  { env: { ...process.env, NODE_PATH: join(root, 'node_modules') } });
// types: one declaration file per module format; the others re-export it
writeFileSync(join(pkg, 'standalone.d.ts'), "export * from './index.js';\n");
writeFileSync(join(pkg, 'standalone.d.cts'), "export * from './index.cjs';\n");
// Node's ESM entry as one module (glue, wrapper and MemoryKV inside): one file for the loader to
// resolve and read instead of four, about 1.5 ms of a cold start
run(bin('esbuild'), [join(pkg, 'node.mjs'), '--bundle', '--format=esm', '--platform=node', '--log-level=warning', '--allow-overwrite', `--outfile=${join(pkg, 'node.mjs')}`]);
for (const f of ['LICENSE-MIT', 'LICENSE-APACHE', 'CHANGELOG.md']) copyFileSync(join(root, f), join(pkg, f));
copyFileSync(join(root, 'js', 'index.d.ts'), join(pkg, 'index.d.ts'));
copyFileSync(join(root, 'js', 'index.d.ts'), join(pkg, 'index.d.cts'));
copyFileSync(join(root, 'js', 'package.json'), join(pkg, 'package.json'));
copyFileSync(join(root, 'js', 'README.md'), join(pkg, 'README.md'));

const size = statSync(join(pkg, 'autopay_auth_bg.wasm')).size;
console.log(`pkg/ ready: autopay_auth_bg.wasm ${(size / 1024).toFixed(1)} KiB`);

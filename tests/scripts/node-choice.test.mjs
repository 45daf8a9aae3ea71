// The Node the scripts run, platform by platform (scripts/node-choice.sh, which scripts/env.sh
// calls with this machine's `uname` and Node): the pinned Node 24 only on Linux x64; elsewhere
// the machine's Node when it is 22.12 or newer, and a plain message when it is not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pinned = join(root, 'node_modules', 'node24', 'bin');

/** Runs `node_choice os arch pinned system` in bash: `{ code, out }`. */
const choose = (...args) =>
  new Promise((resolve) => {
    const script = `source scripts/node-choice.sh; node_choice "$@"`;
    execFile('bash', ['-c', script, 'choice', ...args], { cwd: root, encoding: 'utf8' }, (err, stdout) =>
      resolve({ code: err ? err.code : 0, out: stdout.trim() }),
    );
  });

test('Linux x64 with the pinned Node installed: the pinned Node 24, whatever the machine has', async () => {
  assert.deepEqual(await choose('Linux', 'x86_64', pinned, '18.19.0'), { code: 0, out: `pinned:${pinned}` });
  assert.deepEqual(await choose('Linux', 'x86_64', pinned, ''), { code: 0, out: `pinned:${pinned}` });
});

test('macOS, Linux on ARM, Windows (Git Bash): the machine\u2019s Node when it is 22.12 or newer', async () => {
  for (const [os, arch] of [['Darwin', 'arm64'], ['Darwin', 'x86_64'], ['Linux', 'aarch64'], ['MINGW64_NT-10.0', 'x86_64']]) {
    // the pinned folder may exist (a Linux x64 checkout copied over): never used off Linux x64
    for (const version of ['22.12.0', '22.20.1', '24.3.0', '25.0.0']) {
      assert.deepEqual(await choose(os, arch, pinned, version), { code: 0, out: `system:${version}` }, `${os} ${arch} ${version}`);
    }
  }
});

test('too old or no Node off Linux x64: a plain message naming the versions, and a failure', async () => {
  for (const version of ['22.11.0', '20.19.0', '18.20.4']) {
    const { code, out } = await choose('Darwin', 'arm64', pinned, version);
    assert.equal(code, 1, version);
    assert.match(out, new RegExp(`this machine's Node is ${version.replaceAll('.', '\\.')}; .*need Node 22\\.12\\.0 or later`));
  }
  const none = await choose('Darwin', 'arm64', pinned, '');
  assert.equal(none.code, 1);
  assert.match(none.out, /no Node on PATH; the build needs Node 22\.12\.0 or later/);
});

test('Linux x64 without the pinned Node (an install that skipped optional packages): the machine\u2019s Node', async () => {
  assert.deepEqual(await choose('Linux', 'x86_64', '/nonexistent/bin', '22.12.0'), { code: 0, out: 'system:22.12.0' });
  assert.equal((await choose('Linux', 'x86_64', '/nonexistent/bin', '20.0.0')).code, 1);
});

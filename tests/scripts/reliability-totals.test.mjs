// RELIABILITY.md's Totals are counted from its tables, never typed: the check passes on the
// file as it is, and fails on a copy with one more row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(root, 'scripts', 'reliability-totals.mjs');
const check = (...args) => execFileSync(process.execPath, [script, '--check', ...args], { stdio: 'pipe' });

test("RELIABILITY.md's totals are what its tables count", () => {
  check();
  const dir = mkdtempSync(join(tmpdir(), 'reliability-'));
  try {
    const copy = join(dir, 'RELIABILITY.md');
    const text = readFileSync(join(root, 'RELIABILITY.md'), 'utf8');
    const added = text.replace('\n\n## The Worker proxy', '\n| one more fault | its behaviour | its test |\n\n## The Worker proxy');
    assert.notEqual(added, text);
    writeFileSync(copy, added);
    assert.throws(() => check('--file', copy), /Totals are not what the tables say/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

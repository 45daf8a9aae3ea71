// REFERENCE.md names everything a user meets: every export of the package's types, every
// option, method, counter, error field and code, event type and field, and every setting the
// Worker reads. This fails when the types or the settings reader gain a name the page lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (...p) => readFileSync(join(root, ...p), 'utf8');
const reference = read('REFERENCE.md');
const dts = read('js', 'index.d.ts');

/** The body of `interface Name {…}` / `class Name … {…}` in `source`. */
function block(source, name) {
  const start = source.search(new RegExp(`(interface|class) ${name}\\b[^{]*\\{`));
  assert.ok(start >= 0, `${name} in the types`);
  const open = source.indexOf('{', start);
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    if (source[i] === '{') depth++;
    if (source[i] === '}' && --depth === 0) return source.slice(open + 1, i);
  }
  throw new Error(`unterminated ${name}`);
}
const members = (body) => [...body.matchAll(/^\s+(?:readonly )?(\w+)\??[(:]/gm)].map((m) => m[1]);
const union = (name) => [...dts.match(new RegExp(`type ${name} =([^;]+);`))[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);

function names() {
  const adapters = ['redis.d.ts', 'deno-kv.d.ts', 'upstash.d.ts', 'dynamodb.d.ts'].map((f) => read('js', 'adapters', f));
  const exported = [dts, ...adapters].flatMap((s) => [...s.matchAll(/^export (?:class|interface|type|function|const) (\w+)/gm)].map((m) => m[1]));
  // the Worker's own names, and the variables of the settings table both edges share
  const settings = [...new Set([
    ...[...read('src', 'cloudflare', 'settings.rs').matchAll(/pub const \w+: &str = "(\w+)";/g)].map((m) => m[1]),
    ...[...read('src', 'settings.rs').matchAll(/Some\("(AUTOPAY_\w+)"\)/g)].map((m) => m[1]),
  ])];
  return {
    exported,
    options: ['AutopayAuthCommonOptions', 'SecretCredentials', 'KeyCredentials'].flatMap((name) => members(block(dts, name))),
    methods: members(block(dts, 'AutopayAuth')).filter((m) => m !== 'constructor'),
    stats: members(block(dts, 'AutopayAuthStats')),
    errorFields: members(block(dts, 'AutopayAuthError')),
    tokenInfo: members(block(dts, 'TokenInfo')),
    eventFields: members(block(dts, 'AutopayAuthEvent')),
    codes: union('AutopayAuthErrorCode'),
    events: union('AutopayAuthEventType'),
    settings,
  };
}

test('REFERENCE.md names every export, option, method, counter, code, event and setting', () => {
  const all = names();
  for (const [group, list] of Object.entries(all)) {
    assert.ok(list.length > 0, `found the ${group}`);
    const missing = list.filter((n) => !reference.includes(`\`${n}`));
    assert.deepEqual(missing, [], `REFERENCE.md lacks these ${group}`);
  }
  assert.equal(all.settings.length, 32, 'the thirty-two settings the Worker reads');
  assert.ok(all.options.includes('clientSecret') && all.codes.includes('mint_budget_exhausted'));
});

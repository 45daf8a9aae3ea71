// What a service sees of the package: onEvent gets one plain object per mint, refresh, store
// error, token error and cooldown; the logger gets one line per event at a fitting level;
// `logger: null` is silence; neither ever carries a token or the secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejection, usePackage } from './helpers.mjs';

const SECRET = 'observability-secret-5150';
let emu, AutopayAuth, MemoryKV;
const make = (extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: emu.origin, ...extra });

usePackage(SECRET, (s) => ({ emu, AutopayAuth, MemoryKV } = s));

function recorder() {
  const events = [];
  const lines = [];
  // every argument is kept, so the scan below reads the fields a logger gets, not only messages
  const at = (level) => (message, fields, ...more) => lines.push({ level, message, type: fields?.type, fields, more });
  return { events, lines, onEvent: (e) => events.push(e), logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

test('onEvent and the logger see mints, store errors, token errors and cooldowns — never a value', async () => {
  const r = recorder();
  const failing = { get: async () => { throw new TypeError('x'); }, put: async () => {}, delete: async () => {} };
  const auth = make({ kv: failing, onEvent: r.onEvent, logger: r.logger, storeWaitMs: 0 });
  const token = await auth.getToken();
  await auth.getToken(); // a memory hit: no event
  // the store failing, this instance mints alone (storeOutage 'mint'), and says so
  assert.deepEqual(r.events.map((e) => e.type), ['store_error', 'store_outage', 'mint']);
  assert.equal(r.events[1].detail, 'mint');
  const mint = r.events[2];
  assert.equal(mint.mints, 1);
  assert.equal(mint.lifetimeSecs, 86_400);
  assert.ok(Math.abs(mint.at - Date.now()) < 5_000);
  assert.deepEqual(r.lines.map((l) => [l.level, l.type]), [['warn', 'store_error'], ['warn', 'store_outage'], ['info', 'mint']]);
  emu.fault({ status: 429, headers: { 'retry-after': '9' }, body: { error: 'slow_down' } });
  await auth.invalidate();
  await rejection(auth.getToken());
  const [failed, cooldown] = r.events.slice(-2);
  assert.deepEqual([failed.type, failed.code, failed.status], ['token_error', 'rate_limited', 429]);
  assert.deepEqual([cooldown.type, cooldown.retryAfter], ['cooldown', 9]);
  const text = JSON.stringify([r.events, r.lines]);
  assert.ok(r.lines.every((l) => l.fields && typeof l.fields === 'object' && l.more.length === 0), 'a fields object per line');
  assert.ok(r.lines.some((l) => l.fields.retryAfter === 9), 'the fields carry the numbers');
  assert.ok(!text.includes(token) && !text.includes(SECRET), text);
  for (const l of r.lines) {
    for (const [k, v] of Object.entries(l.fields)) {
      assert.ok(!String(v).includes(token) && !String(v).includes(SECRET) && !String(v).includes('v2.'), `${k}: ${v}`);
    }
  }
});

test('logger: null is silence; a logger or onEvent that throws is ignored', async () => {
  const warn = console.warn;
  const seen = [];
  console.warn = (...a) => seen.push(a);
  try {
    const failing = { get: async () => { throw new Error('x'); }, put: async () => {}, delete: async () => {} };
    assert.ok(await make({ kv: failing, logger: null }).getToken());
    const boom = () => { throw new Error('observer bug'); };
    const loud = { debug: boom, info: boom, warn: boom, error: boom };
    assert.ok(await make({ logger: loud, onEvent: boom }).getToken());
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(seen, []);
});

test('the default logger is console', async () => {
  const info = console.info;
  const seen = [];
  console.info = (...a) => seen.push(a);
  try {
    await make().getToken();
  } finally {
    console.info = info;
  }
  assert.equal(seen.length, 1);
  assert.equal(seen[0][0], 'autopay-auth: minted a token');
  assert.equal(seen[0][1].type, 'mint');
});

test('a logger without the four methods, or an onEvent that is not a function, is refused', () => {
  for (const [options, option] of [[{ logger: { info() {} } }, 'logger'], [{ onEvent: 'x' }, 'onEvent']]) {
    assert.throws(() => make(options), (e) => e.code === 'invalid_config' && e.option === option);
  }
});

/** The log lines a real logger writes, parsed: a stream that keeps them. */
function sink() {
  const lines = [];
  return { lines, write: (chunk) => lines.push(...String(chunk).split('\n').filter(Boolean).map((l) => JSON.parse(l))) };
}

/** A mint, then a 429 cooldown: the two lines whose fields matter most. */
async function mintThenCooldown(auth) {
  await auth.getToken();
  emu.fault({ status: 429, headers: { 'retry-after': '9' }, body: { error: 'slow_down' } });
  await auth.invalidate();
  await rejection(auth.getToken());
}

test('pino, with loggerArgs: fields-first, logs every field; without it pino drops them (why the option exists)', async () => {
  const { default: pino } = await import('pino');
  const withArgs = sink();
  await mintThenCooldown(make({ logger: pino({ level: 'debug' }, withArgs), loggerArgs: 'fields-first' }));
  const mint = withArgs.lines.find((l) => l.msg === 'autopay-auth: minted a token');
  assert.deepEqual([mint.level, mint.type, mint.mints, mint.lifetimeSecs], [30, 'mint', 1, 86_400]);
  const cooldown = withArgs.lines.find((l) => l.type === 'cooldown');
  assert.deepEqual([cooldown.level, cooldown.code, cooldown.retryAfter], [40, 'rate_limited', 9]);
  const plain = sink();
  await mintThenCooldown(make({ logger: pino({ level: 'debug' }, plain) }));
  const lost = plain.lines.find((l) => l.msg === 'autopay-auth: minted a token');
  assert.equal(lost.mints, undefined, 'pino takes (fields, message): a second-argument object is lost');
});

test('winston, as it comes (message first), logs every field', async () => {
  const { default: winston } = await import('winston');
  const { Writable } = await import('node:stream');
  const out = sink();
  const stream = new Writable({ write: (chunk, _enc, done) => (out.write(chunk), done()) });
  const logger = winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
  await mintThenCooldown(make({ logger }));
  const mint = out.lines.find((l) => l.message === 'autopay-auth: minted a token');
  assert.deepEqual([mint.level, mint.type, mint.mints, mint.lifetimeSecs], ['info', 'mint', 1, 86_400]);
  const cooldown = out.lines.find((l) => l.type === 'cooldown');
  assert.deepEqual([cooldown.level, cooldown.code, cooldown.retryAfter], ['warn', 'rate_limited', 9]);
});

test('loggerArgs is one of two strings', () => {
  for (const loggerArgs of ['fields', 'pino', 1]) {
    assert.throws(() => make({ loggerArgs }), (e) => e.code === 'invalid_config' && e.option === 'loggerArgs', String(loggerArgs));
  }
});

test('a waitUntil that throws is logged once, and the refreshes run on without it', async () => {
  emu.setExpiresIn(20); // stale after 1 s with refreshRatio 0.05
  const r = recorder();
  let handed = 0;
  const waitUntil = () => {
    handed++;
    throw new Error('no request context here');
  };
  const auth = make({ logger: r.logger, waitUntil, refreshRatio: 0.05, refreshJitterSec: 0 });
  const first = await auth.getToken();
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  await sleep(1_100);
  await auth.getToken(); // stale: a refresh, handed to the throwing waitUntil
  await sleep(300);
  const second = await auth.getToken();
  assert.notEqual(second, first, 'the refresh landed');
  await sleep(1_100);
  await auth.getToken(); // stale again: handed again
  await sleep(300);
  assert.equal(handed, 2);
  const said = r.lines.filter((l) => l.type === 'wait_until_error');
  assert.equal(said.length, 1, 'once');
  assert.equal(said[0].level, 'warn');
  assert.equal(said[0].fields.detail, 'Error', 'the error\u2019s name, not its message');
  assert.match(said[0].message, /waitUntil threw/);
  assert.equal(emu.stats().minted, 3);
});

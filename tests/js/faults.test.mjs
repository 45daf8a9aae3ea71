// Fail closed on minting, open on serving — the packed package against the emulator's faults:
// a fault may cost a caller an error, never the customer an extra token; no caller hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { openSealed } from '../sealed.mjs';
import { rejection, usePackage } from './helpers.mjs';

const SECRET = 'faults-test-secret-Q9z';
let emu, AutopayAuth, AutopayAuthError, MemoryKV;
const make = (extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: `${emu.origin}/v1`, ...extra });

usePackage(SECRET, (s) => ({ emu, AutopayAuth, AutopayAuthError, MemoryKV } = s));

/** A logger (the shape of console, pino, winston) that keeps `[level, message, fields]`. */
function capture() {
  const lines = [];
  const at = (level) => (message, fields) => lines.push([level, message, fields]);
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

test('a wrong secret: 20 calls make one token request, each gets the same typed error', async () => {
  const auth = make({ clientSecret: 'not-the-secret' });
  for (let i = 0; i < 20; i++) {
    const e = await rejection(auth.getToken());
    assert.ok(e instanceof AutopayAuthError);
    assert.deepEqual([e.code, e.status, e.error], ['access_denied', 401, 'access_denied']);
  }
  assert.equal(emu.stats().tokenRequests, 1);
  // invalidate() is "something changed": the next call asks again
  await auth.invalidate();
  await rejection(auth.getToken());
  assert.equal(emu.stats().tokenRequests, 2);
});

test('an API that refuses every token: 40 calls mint two tokens, and get its 401 as it is', async () => {
  emu.refuseAll();
  const auth = make();
  for (let i = 0; i < 40; i++) {
    const r = await auth.fetch('/orders', { method: 'POST', body: 'x' });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error, 'invalid_token');
  }
  assert.equal(emu.stats().minted, 2);
});

test('a 503 is retried inside the one mint that every caller shares', async () => {
  emu.fault({ status: 503, body: { error: 'temporarily_unavailable' } });
  const auth = make();
  const tokens = await Promise.all(Array.from({ length: 30 }, () => auth.getToken()));
  assert.equal(new Set(tokens).size, 1);
  assert.deepEqual([emu.stats().tokenRequests, emu.stats().minted], [2, 1]);
});

test('after a 429 with Retry-After no request reaches the endpoint until it has passed', async () => {
  emu.fault({ status: 429, headers: { 'retry-after': '2' }, body: { error: 'too_many_requests', error_description: 'slow down' } });
  const auth = make();
  const first = await rejection(auth.getToken());
  assert.deepEqual([first.code, first.retryAfter], ['rate_limited', 2]);
  for (let i = 0; i < 10; i++) {
    const e = await rejection(auth.getToken());
    assert.equal(e.code, 'rate_limited');
    assert.ok(e.retryAfter >= 1 && e.retryAfter <= 2, `retryAfter ${e.retryAfter}`);
  }
  assert.equal(emu.stats().tokenRequests, 1);
  await new Promise((r) => setTimeout(r, 2_050));
  assert.ok(await auth.getToken());
  assert.equal(emu.stats().tokenRequests, 2);
});

test('a Retry-After HTTP date is read with the platform\'s date parser', async () => {
  const at = new Date(Date.now() + 10_000).toUTCString();
  emu.fault({ status: 429, headers: { 'retry-after': at }, body: { error: 'too_many_requests' } });
  const e = await rejection(make().getToken());
  assert.equal(e.code, 'rate_limited');
  assert.ok(e.retryAfter >= 8 && e.retryAfter <= 10, `retryAfter ${e.retryAfter} for ${at}`);
});

test('a 20 MB token answer is refused without being buffered', async () => {
  emu.fault({ status: 200, raw: JSON.stringify({ access_token: 'a'.repeat(20 * 1024 * 1024), expires_in: 60, token_type: 'Bearer' }) });
  const e = await rejection(make().getToken());
  assert.equal(e.code, 'invalid_response');
  assert.match(e.message, /64 KiB/);
});

test('a token that cannot be a header value is refused, wherever it comes from', async () => {
  emu.fault({ status: 200, body: { access_token: 'abc\r\nX-Evil: 1', expires_in: 3600, token_type: 'Bearer' } });
  assert.equal((await rejection(make().getToken())).code, 'invalid_response');
});

test('a KV get that never settles costs its bound, not a hang', async () => {
  const never = new Promise(() => {});
  const kv = { get: () => never, put: () => never, delete: () => never };
  // storeWaitMs: 0 — the outage rule at once, without trying the store again first
  const auth = make({ kv, storeTimeoutMs: 100, storeWaitMs: 0 });
  const started = Date.now();
  assert.ok(await auth.getToken());
  assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  // minted alone: the request is this instance's, so only the record is written for it
  assert.equal(auth.stats().kvErrors, 2, "the read and the record's write timed out, counted");
});

test('a token planted in KV is never served: only sealed records of this secret open', async () => {
  const kv = new MemoryKV();
  const auth = make({ kv });
  const real = await auth.getToken();
  const key = (await kv.list()).keys[0].name;
  const sealed = await kv.get(key);
  assert.ok(sealed.startsWith('v2.') && !sealed.includes(real) && !sealed.includes(SECRET));
  const day = Date.now() + 86_400_000;
  for (const planted of [
    JSON.stringify({ v: 2, access_token: 'planted', token_type: 'Bearer', issued_at_ms: Date.now(), expires_at_ms: day }),
    sealed.slice(0, -3) + 'AAA',
    'v2.' + Buffer.from('x'.repeat(60)).toString('base64url'),
  ]) {
    await kv.put(key, planted, { expirationTtl: 3600 });
    const other = make({ kv });
    const info = await other.getTokenInfo();
    assert.notEqual(info.accessToken, 'planted');
    assert.equal(info.source, 'network');
    assert.equal(other.stats().kvRejected, 1);
  }
});

test('the package never crashes its host: odd fetches, throwing getters, odd stores', async () => {
  const odd = [() => null, () => 42, () => ({ status: 'x' }), () => { throw new Error('boom'); }, () => Promise.reject(7)];
  for (const fetch of odd) {
    const e = await rejection(make({ fetch }).getToken());
    assert.equal(e.code, 'network', String(fetch));
  }
  const getters = { clientId: 'cid', tokenUrl: emu.tokenUrl, get clientSecret() { throw new Error('secret store down'); } };
  assert.throws(() => new AutopayAuth(getters), (e) => e.code === 'invalid_config' && e.option === 'clientSecret');
  const auth = make();
  await auth.getToken();
  const init = { get signal() { throw new Error('getter'); } };
  await rejection(auth.fetch('/x', init));
  await rejection(auth.getTokenInfo({ get signal() { throw new Error('getter'); } }));
  const badHeaders = { method: 'GET', get headers() { throw new Error('getter'); } };
  await rejection(auth.fetch('/x', badHeaders));
  const weird = make({ kv: { get: async () => 12345, put: async () => {}, delete: async () => {} } });
  assert.equal((await weird.getTokenInfo()).source, 'network', 'a non-string value is a miss');
});

test('a polluted Object.prototype cannot redirect the secret, the token or the store', async () => {
  const evil = [];
  const server = createServer((req, res) => { evil.push(req.url); res.end('{}'); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const trap = `http://127.0.0.1:${server.address().port}`;
  try {
    Object.prototype.tokenUrl = `${trap}/oauth/token`;
    Object.prototype.apiBaseUrl = trap;
    Object.prototype.kv = { get: async () => null, put: async () => evil.push('put'), delete: async () => {} };
    // every option that could send, log, watch or reshape something, inherited: none is read
    Object.prototype.fetch = async () => {
      evil.push('fetch');
      throw new Error('trap');
    };
    Object.prototype.onEvent = () => evil.push('onEvent');
    Object.prototype.logger = { debug: () => evil.push('log'), info: () => evil.push('log'), warn: () => evil.push('log'), error: () => evil.push('log') };
    Object.prototype.waitUntil = () => evil.push('waitUntil');
    Object.prototype.audience = `${trap}/audience`; // Autopay's emulator refuses any other audience
    Object.prototype.clientAuth = 'client_secret_basic';
    Object.prototype.tokenRequest = 'form';
    Object.prototype.timeoutMs = 1;
    const auth = new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: `${emu.origin}/v1` });
    assert.ok(await auth.getToken());
    assert.equal((await auth.fetch('/x')).status, 200);
    assert.throws(() => new AutopayAuth({ clientId: 'cid' }), (e) => e.option === 'clientSecret');
  } finally {
    for (const k of ['tokenUrl', 'apiBaseUrl', 'kv', 'fetch', 'onEvent', 'logger', 'waitUntil', 'audience', 'clientAuth', 'tokenRequest', 'timeoutMs']) {
      delete Object.prototype[k];
    }
    server.close();
  }
  assert.deepEqual(evil, []);
});

test('auth.fetch follows redirects only within apiBaseUrl', async () => {
  const seen = [];
  const server = createServer((req, res) => { seen.push(req.headers.authorization ?? null); res.end('elsewhere'); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const away = `http://127.0.0.1:${server.address().port}/steal`;
  try {
    const auth = make();
    const inside = await auth.fetch(`/hop?redirect=${encodeURIComponent(`${emu.origin}/v1/landed`)}`);
    assert.equal(inside.status, 200);
    assert.equal((await inside.json()).path, '/v1/landed');
    const outside = await auth.fetch(`/hop?redirect=${encodeURIComponent(away)}`);
    assert.equal(outside.status, 302, 'a redirect that would leave the base is handed back');
    const climbing = await auth.fetch(`/hop?status=307&redirect=${encodeURIComponent(`${emu.origin}/admin`)}`, { method: 'POST', body: 'b' });
    assert.equal(climbing.status, 307);
    assert.deepEqual(seen, [], 'neither the token nor the body left the base');
  } finally {
    server.close();
  }
});

test('auth.fetch follows at most 5 redirects, then hands the sixth back as it is', async () => {
  const auth = make();
  // a chain of `n` redirects, every hop inside apiBaseUrl, ending at /v1/landed
  const chain = (n) => {
    let url = `${emu.origin}/v1/landed`;
    for (let i = 1; i < n; i++) url = `${emu.origin}/v1/hop?redirect=${encodeURIComponent(url)}`;
    return `/hop?redirect=${encodeURIComponent(url)}`;
  };
  const five = await auth.fetch(chain(5));
  assert.equal(five.status, 200, 'five redirects are followed');
  assert.equal((await five.json()).path, '/v1/landed');
  const six = await auth.fetch(chain(6));
  assert.equal(six.status, 302, 'the sixth is handed back');
  assert.ok(six.headers.get('location').includes('/v1/landed'));
});

test('init.headers the platform refuses: a typed invalid_argument, nothing sent', async () => {
  const auth = make();
  await auth.getToken();
  const before = emu.stats().apiRequests ?? null;
  for (const headers of [{ 'bad header': 'x' }, { ok: 'line\nbreak' }, [['only-a-name']]]) {
    const e = await rejection(auth.fetch('/x', { headers }));
    assert.equal(e.code, 'invalid_argument', JSON.stringify(headers));
    assert.match(e.message, /init\.headers/);
  }
  if (before !== null) assert.equal(emu.stats().apiRequests, before, 'nothing reached the API');
});

test('a token answer that never ends is read only up to 64 KiB, never buffered', async () => {
  emu.fault({ endless: true });
  const auth = make({ timeoutMs: 8_000 });
  const started = Date.now();
  const e = await rejection(auth.getToken());
  const took = Date.now() - started;
  // a reader that buffered the whole body would wait for its 8 s timeout and fail with `timeout`
  assert.equal(e.code, 'invalid_response', `${e.code} after ${took} ms`);
  assert.ok(took < 4_000, `took ${took} ms`);
});

test('a fetch that ignores its abort signal and never settles costs its bound, not a hang', async () => {
  const never = () => new Promise(() => {}); // ignores the signal it is handed
  const auth = make({ fetch: never, timeoutMs: 200 });
  const started = Date.now();
  const e = await rejection(auth.getToken());
  const took = Date.now() - started;
  assert.equal(e.code, 'timeout');
  // each attempt ends 1 s after its 200 ms timeout whatever the fetch does: three attempts
  // and their waits, far under the 30 s mint deadline
  assert.ok(took < 6_000, `took ${took} ms`);
});

test("logs carry no values: a store's error text is not copied, only the operation and its name", async () => {
  const quoted = 'leaked-value-0xC0FFEE';
  const kv = {
    get: async () => { throw new RangeError(`bad key ${quoted}`); },
    put: async () => { throw new Error(`cannot store ${quoted}`); },
    delete: async () => {},
  };
  const { logger, lines } = capture();
  assert.ok(await make({ kv, logger, storeWaitMs: 0 }).getToken());
  const warnings = lines.filter(([level]) => level === 'warn').map(([, message, fields]) => [message, fields.detail]);
  assert.deepEqual(warnings, [
    ['autopay-auth: a store call failed (the token is still served)', 'KV get failed: RangeError'],
    ['autopay-auth: the shared store cannot be reached by a caller without a token (detail: mint alone, or fail)', 'mint'],
    // the record's write (minted alone: no fleet state is written for it)
    ['autopay-auth: a store call failed (the token is still served)', 'KV put failed: Error'],
  ]);
  assert.ok(lines.every((l) => !JSON.stringify(l).includes(quoted)));
});

test('every implementation of the sealed format agrees (Rust, WebCrypto, Node crypto)', async () => {
  // sealed by the Rust core (src/seal.rs's fixed vector), opened by Node's crypto
  const vector = readFileSync(new URL('../seal-vector.txt', import.meta.url), 'utf8');
  assert.deepEqual(openSealed(vector, 'vector-secret', 'autopay-auth:v2:vector'), {
    v: 2, access_token: 'tok-abc', token_type: 'Bearer', scope: 'customer_club', issued_at_ms: 1000, expires_at_ms: 121000,
  });
  assert.equal(openSealed(vector, 'another-secret', 'autopay-auth:v2:vector'), null);
  // sealed by the package (WebCrypto), opened by Node's crypto
  const kv = new MemoryKV();
  const token = await make({ kv }).getToken();
  const key = (await kv.list()).keys[0].name;
  assert.equal(openSealed(await kv.get(key), SECRET, key).access_token, token);
});

test('a loop that invalidates after every call meets the mint budget, logged once', async () => {
  const { logger, lines } = capture();
  const auth = make({ logger });
  for (let i = 0; i < 11; i++) {
    await auth.getToken();
    await auth.invalidate(); // the bug: forget the token after each use
  }
  for (let i = 0; i < 5; i++) {
    const e = await rejection(auth.getToken());
    assert.equal(e.code, 'mint_budget_exhausted');
    assert.ok(e.retryAfter > 3_500 && e.retryAfter <= 3_600, `retryAfter ${e.retryAfter}`);
  }
  assert.equal(emu.stats().minted, 11, 'a day-long token: 10 + 1 requests per hour, then none');
  const errors = lines.filter(([level]) => level === 'error');
  assert.equal(errors.length, 1, JSON.stringify(lines));
  assert.match(errors[0][1], /mint budget exhausted/);
  assert.equal(errors[0][2].type, 'budget_exhausted');
});

test('options are read once: a getter that answers differently the second time has no effect', async () => {
  const reads = {};
  const twoFaced = (key, first, later) => ({
    get() {
      reads[key] = (reads[key] ?? 0) + 1;
      return reads[key] === 1 ? first : later;
    },
    enumerable: true,
  });
  const options = Object.defineProperties(
    { clientId: 'cid', clientSecret: SECRET },
    {
      // the first read passes the checks; a second one would send the token request elsewhere
      tokenUrl: twoFaced('tokenUrl', emu.tokenUrl, 'https://attacker.example/steal'),
      apiBaseUrl: twoFaced('apiBaseUrl', emu.origin, 'https://attacker.example'),
      timeoutMs: twoFaced('timeoutMs', 5_000, 'not a number'),
    },
  );
  const auth = new AutopayAuth(options);
  assert.deepEqual(reads, { tokenUrl: 1, apiBaseUrl: 1, timeoutMs: 1 }, 'each option read exactly once');
  await auth.getToken();
  assert.equal((await auth.fetch('/customer_club/members')).status, 200);
  assert.equal(emu.stats().tokenRequests, 1, 'the token request went where the checked URL said');
  assert.deepEqual(reads, { tokenUrl: 1, apiBaseUrl: 1, timeoutMs: 1 }, 'and never again');
});

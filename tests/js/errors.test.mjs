// Every error code, with status / error / description / retryAfter, as AutopayAuthError —
// and the client secret in none of them, nor anywhere else the library hands out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { usePackage } from './helpers.mjs';

const SECRET = 'errors-test-secret-XYZ-31337';
let emu, AutopayAuth, AutopayAuthError, MemoryKV;
const make = (extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, apiBaseUrl: emu.origin, ...extra });

function assertNoSecret(...things) {
  for (const t of things) {
    for (const text of [String(t), inspect(t, { showHidden: true, depth: 5 }), JSON.stringify(t) ?? '', t?.stack ?? '']) {
      assert.ok(!text.includes(SECRET), `secret leaked in: ${text.slice(0, 200)}`);
    }
  }
}

async function failure(auth) {
  try {
    await auth.getToken();
  } catch (e) {
    assert.ok(e instanceof AutopayAuthError && e instanceof Error);
    assert.equal(e.name, 'AutopayAuthError');
    assertNoSecret(e);
    return e;
  }
  assert.fail('expected a rejection');
}

usePackage(SECRET, (s) => ({ emu, AutopayAuth, AutopayAuthError, MemoryKV } = s));

test('access_denied: wrong credentials, with the server error and status', async () => {
  const e = await failure(make({ clientSecret: 'wrong-secret' }));
  assert.deepEqual(
    { code: e.code, status: e.status, error: e.error, description: e.description, retryAfter: e.retryAfter },
    { code: 'access_denied', status: 401, error: 'access_denied', description: 'Unauthorized', retryAfter: null },
  );
});

test('invalid_request: the endpoint refuses the request (wrong audience)', async () => {
  const e = await failure(make({ audience: 'https://wrong.example' }));
  assert.equal(e.code, 'invalid_request');
  assert.equal(e.status, 400);
  assert.equal(e.error, 'invalid_request');
  assert.match(e.description, /Service not found/);
});

test('rate_limited: 429 with Retry-After', async () => {
  emu.fault({ status: 429, headers: { 'retry-after': '30' }, body: { error: 'too_many_requests', error_description: 'slow down' } });
  const e = await failure(make());
  assert.equal(e.code, 'rate_limited');
  assert.equal(e.status, 429);
  assert.equal(e.retryAfter, 30);
  assert.equal(e.description, 'slow down');
});

test('server_error: 5xx, raw body never forwarded', async () => {
  const fault = { status: 502, raw: '<html>upstream secret stack trace</html>' };
  emu.fault(fault, fault, fault); // every attempt of the one mint
  const e = await failure(make());
  assert.equal(e.code, 'server_error');
  assert.equal(e.status, 502);
  assert.equal(e.error, null);
  assert.ok(!e.message.includes('<html>'));
});

test('network: nothing listens there; the platform error is the cause, the host is named', async () => {
  const e = await failure(make({ tokenUrl: 'http://127.0.0.1:9/oauth/token?x=1' }));
  assert.equal(e.code, 'network');
  assert.equal(e.status, null);
  assert.equal(e.host, '127.0.0.1:9');
  assert.ok(e.message.includes('127.0.0.1:9') && !e.message.includes('/oauth/token'), e.message);
  assert.ok(e.cause instanceof TypeError, `cause: ${e.cause}`);
});

test('timeout: the endpoint answers too late', async () => {
  emu.fault({ delayMs: 1_000 }, { delayMs: 1_000 }, { delayMs: 1_000 });
  const started = Date.now();
  const e = await failure(make({ timeoutMs: 150 }));
  assert.equal(e.code, 'timeout');
  assert.equal(e.host, new URL(emu.tokenUrl).host);
  assert.equal(e.cause?.name, 'TimeoutError');
  // three attempts of 150 ms, with at most 250 + 500 ms between them
  assert.ok(Date.now() - started < 1_500, `${Date.now() - started} ms`);
  assert.equal(emu.stats().tokenRequests, 3);
});

test('invalid_response: malformed or contract-breaking answers are not cached', async () => {
  const kv = new MemoryKV();
  for (const fault of [
    { status: 200, raw: 'not json' },
    { status: 200, body: { access_token: 'x', expires_in: 0, token_type: 'Bearer' } },
    { status: 200, body: { access_token: '', expires_in: 60, token_type: 'Bearer' } },
    { status: 200, body: { access_token: 'x', expires_in: 60, token_type: 'MAC' } },
    { status: 200, body: { access_token: 'x', expires_in: '60', token_type: 'Bearer' } },
  ]) {
    emu.fault(fault);
    const e = await failure(make({ kv }));
    assert.equal(e.code, 'invalid_response', JSON.stringify(fault));
    assert.equal(e.status, 200);
  }
  // no record; only the fleet state, holding the refusal for every instance on this store
  const names = (await kv.list()).keys.map((k) => k.name);
  assert.deepEqual(names.map((n) => n.endsWith(':fleet')), [true], names.join());
});

test('invalid_config: each bad option is named, its value never shown', () => {
  const good = { clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl };
  const cases = [
    [undefined, 'options'],
    [{ ...good, clientId: undefined }, 'clientId'],
    [{ ...good, clientId: '' }, 'clientId'],
    [{ ...good, clientSecret: 42 }, 'clientSecret'],
    [{ ...good, tokenUrl: 'ftp://x' }, 'tokenUrl'],
    [{ ...good, tokenUrl: 'http://example.com/token' }, 'tokenUrl'],
    [{ ...good, apiBaseUrl: 'nope' }, 'apiBaseUrl'],
    [{ ...good, audience: 7 }, 'audience'],
    [{ ...good, kv: {} }, 'kv'],
    // a lock without a fenced release is no lock
    [{ ...good, kv: { get() {}, put() {}, delete() {}, putIfAbsent() {} } }, 'kv'],
    [{ ...good, fetch: 'x' }, 'fetch'],
    [{ ...good, refreshRatio: 0 }, 'refreshRatio'],
    [{ ...good, expiryMarginSec: -1 }, 'expiryMarginSec'],
    [{ ...good, timeoutMs: Infinity }, 'timeoutMs'],
    [{ ...good, waitUntil: 'later' }, 'waitUntil'],
    [{ ...good, clientsecret: 'typo' }, 'clientsecret'],
  ];
  for (const [options, option] of cases) {
    assert.throws(
      () => new AutopayAuth(options),
      (e) => {
        assert.ok(e instanceof AutopayAuthError);
        assert.equal(e.code, 'invalid_config');
        assert.equal(e.option, option);
        assert.ok(e.message.includes(option));
        assertNoSecret(e);
        return true;
      },
    );
  }
});

test('another vendor with tokenUrl unset: invalid_config naming tokenUrl, nothing sent anywhere', async () => {
  let sent = 0;
  const fetch = async () => {
    sent += 1;
    throw new Error('nothing may be sent');
  };
  const vendor = { clientId: 'vendor-client', clientSecret: SECRET, fetch };
  // the five foreign shapes, each read from an environment variable that is not set
  const foreign = [
    { audience: 'https://api.vendor.example' },
    { audience: null },
    { tokenRequest: 'form' },
    { clientAuth: 'client_secret_basic' },
    { scope: 'read:things' },
    { resource: 'https://api.vendor.example' },
  ];
  for (const tokenUrl of [undefined, process.env.AUTOPAY_TEST_UNSET_TOKEN_URL, '']) {
    for (const extra of foreign) {
      assert.throws(
        () => new AutopayAuth({ ...vendor, tokenUrl, ...extra }),
        (e) => {
          assert.equal(e.code, 'invalid_config', JSON.stringify(extra));
          assert.equal(e.option, 'tokenUrl');
          assertNoSecret(e);
          return true;
        },
      );
    }
  }
  // with its own endpoint, the same configuration is fine; auth.fetch then needs apiBaseUrl
  // (Autopay's API is the default only for Autopay's tokens)
  const auth = new AutopayAuth({ ...vendor, tokenUrl: emu.tokenUrl, audience: null });
  await assert.rejects(auth.fetch('/v1/echo'), (e) => {
    assert.equal(e.code, 'invalid_config');
    assert.equal(e.option, 'apiBaseUrl');
    return true;
  });
  assert.equal(sent, 0, 'no request left the client');
  // Autopay's own shape keeps both defaults
  assert.doesNotThrow(() => new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, fetch }));
});

test('the secret is in nothing the library hands out', async () => {
  const kv = new MemoryKV();
  const auth = make({ kv });
  const info = await auth.getTokenInfo();
  const res = await auth.fetch('/v1/echo');
  const echo = await res.text();
  const stored = await Promise.all((await kv.list()).keys.map((k) => kv.get(k.name)));
  assertNoSecret(auth, info, auth.stats(), echo, stored, (await kv.list()).keys);
});

// What callers see when no token can be had, and when the configuration is wrong: Autopay's
// error and error_description with 502, 503 + Retry-After when rate limited; 500 naming the
// setting; never a secret, never Autopay's raw body.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { startEmulator, startWorker, auth, CLIENT_ID, CLIENT_SECRET, CALLER_KEY } from './helpers.mjs';

let emu;
before(async () => (emu = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })));
after(() => emu.close());
beforeEach(() => emu.post('/__emulator/reset'));

async function with_(bindings, fn) {
  const w = await startWorker(emu, bindings);
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

test('bad credentials → 502 with Autopay error, description and status', async () => {
  await with_({ AUTOPAY_CLIENT_SECRET: 'wrong-secret-value' }, async (w) => {
    for (const path of ['/token', '/proxied/path']) {
      const r = await w.call(path, { headers: auth() });
      assert.equal(r.status, 502);
      const b = await r.json();
      assert.deepEqual(b, { error: 'access_denied', error_description: 'Unauthorized', status: 401 });
    }
  });
});

test('rate limited → 503 with Retry-After', async () => {
  await with_({}, async (w) => {
    emu.fault({ status: 429, headers: { 'retry-after': '17' }, body: { error: 'rate_limited', error_description: 'slow down' } });
    const r = await w.call('/token', { headers: auth() });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '17');
    assert.equal((await r.json()).error_description, 'slow down');
  });
});

test("Autopay's raw body is never forwarded", async () => {
  await with_({}, async (w) => {
    const fault = { status: 500, raw: '<html>internal stack trace</html>' };
    emu.fault(fault, fault, fault); // every attempt of the one mint
    const r = await w.call('/token', { headers: auth() });
    assert.equal(r.status, 502);
    const text = await r.text();
    assert.ok(!text.includes('<html>'), text);
    assert.equal(JSON.parse(text).error, 'server_error');
  });
});

const keyed = {
  AUTOPAY_TOKEN_URL: 'https://login.example.com/tenant/oauth2/v2.0/token',
  AUTOPAY_API_BASE: 'https://api.example.com',
  AUTOPAY_AUDIENCE: 'none',
  AUTOPAY_TOKEN_REQUEST: 'form',
  AUTOPAY_CLIENT_AUTH: 'private_key_jwt',
  AUTOPAY_CLIENT_SECRET: null,
  AUTOPAY_PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey,
};

test('missing or malformed settings → 500 naming each setting, never its value', async () => {
  const cases = [
    [{ AUTOPAY_CLIENT_SECRET: null }, ['AUTOPAY_CLIENT_SECRET']],
    [{ AUTOPAY_CLIENT_ID: '', PROXY_API_KEYS: 'short' }, ['AUTOPAY_CLIENT_ID', 'PROXY_API_KEYS']],
    [{ AUTOPAY_TOKEN_URL: 'http://auth.example.com/oauth/token' }, ['AUTOPAY_TOKEN_URL']],
    [{ AUTOPAY_API_BASE: 'not a url' }, ['AUTOPAY_API_BASE']],
    // another vendor's settings with the token URL unset or empty: never Autopay's endpoint
    [{ AUTOPAY_TOKEN_URL: null, AUTOPAY_SCOPE: 'read' }, ['AUTOPAY_TOKEN_URL']],
    [{ AUTOPAY_TOKEN_URL: null, AUTOPAY_AUDIENCE: 'none' }, ['AUTOPAY_TOKEN_URL']],
    [{ AUTOPAY_TOKEN_URL: '', AUTOPAY_TOKEN_REQUEST: 'form' }, ['AUTOPAY_TOKEN_URL']],
    [{ AUTOPAY_TOKEN_URL: null, AUTOPAY_CLIENT_AUTH: 'client_secret_basic' }, ['AUTOPAY_TOKEN_URL']],
    [{ AUTOPAY_TOKEN_URL: null, AUTOPAY_AUDIENCE: 'https://auth.example.com/api' }, ['AUTOPAY_TOKEN_URL']],
    // a token from another endpoint never goes to Autopay's API by default
    [{ AUTOPAY_API_BASE: null }, ['AUTOPAY_API_BASE']],
    [{ HEALTH_API_KEYS: 'short' }, ['HEALTH_API_KEYS']],
    [{ AUTOPAY_MINT_BUDGET: '3/week' }, ['AUTOPAY_MINT_BUDGET']],
    // Entra's certificate credentials: the certificate and x5c are read with the key
    [{ ...keyed, AUTOPAY_CERTIFICATE: 'not a certificate' }, ['AUTOPAY_CERTIFICATE']],
    [{ ...keyed, AUTOPAY_X5C: 'yes' }, ['AUTOPAY_X5C']],
    // a health key that is also a caller key would fetch tokens: refused
    [{ HEALTH_API_KEYS: `monitoring-key-0123456789, ${CALLER_KEY}` }, ['HEALTH_API_KEYS']],
  ];
  for (const [bindings, names] of cases) {
    const w = await startWorker(emu, bindings);
    try {
      for (const path of ['/healthz', '/token', '/x']) {
        const r = await w.call(path, { headers: auth() });
        const text = await r.text();
        assert.equal(r.status, 500, `${path} ${text}`);
        const body = JSON.parse(text);
        assert.equal(body.error, 'misconfigured');
        assert.deepEqual(body.settings.map((s) => s.setting).sort(), [...names].sort(), text);
        assert.ok(!text.includes(CLIENT_SECRET) && !text.includes('auth.example.com'), text);
      }
      // liveness does not depend on configuration
      const live = await w.call('/livez');
      assert.deepEqual([live.status, await live.text()], [200, 'ok']);
    } finally {
      await w.close();
    }
  }
  assert.equal(emu.stats().tokenRequests, 0);
});

// The minting authority itself failing, in workerd: the object's class comes from another
// Worker whose object throws on every call, or never answers.
const BROKEN = {
  throwing: `export class TokenMinter { constructor() {} async fetch() { throw new Error('minter down'); } }
export default { fetch() { return new Response('minter worker'); } }`,
  slow: `export class TokenMinter { constructor() {} fetch() { return new Promise(() => {}); } }
export default { fetch() { return new Response('minter worker'); } }`,
};

for (const [kind, minterScript] of Object.entries(BROKEN)) {
  test(`a Durable Object that is ${kind === 'slow' ? 'slow (never answers)' : 'throwing'}: 503 with Retry-After, and the isolate never mints by itself`, { timeout: 120_000 }, async () => {
    const w = await startWorker(emu, {}, { minterScript });
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, () => w.call('/token', { headers: auth() })));
      for (const r of answers) {
        assert.equal(r.status, 503, await r.clone().text());
        assert.ok(Number(r.headers.get('retry-after')) > 0);
        const body = await r.json();
        assert.ok(!JSON.stringify(body).includes('minter down'), 'the object\'s error is not forwarded');
      }
      assert.equal(emu.stats().tokenRequests, 0, 'no isolate minted on its own');
    } finally {
      await w.close();
    }
  });
}

// The packed package against a real, certified authorization server (oidc-provider on
// 127.0.0.1): each client authentication, form and JSON bodies, scope, resource indicators, the
// refusals RFC 6749 §5.2 names, a replayed assertion, a burst, and bad options. The count of
// token requests is the server's own.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { importPackage, rejection, startEmulator } from './helpers.mjs';
import { startProvider, clientKeys, API, BASIC_SECRET, POST_SECRET } from '../oidc/provider.mjs';

let as, keys, AutopayAuth, MemoryKV;
before(async () => {
  ({ AutopayAuth, MemoryKV } = await importPackage());
  keys = await clientKeys();
  as = await startProvider(keys);
});
after(() => as.close());
beforeEach(() => as.reset());

/** Every token request the client sends, as it left (content type, Authorization, body). */
function recordingFetch() {
  const sent = [];
  const fetchFn = (url, init) => {
    sent.push({ url, headers: new Headers(init.headers), body: String(init.body) });
    return fetch(url, init);
  };
  return { sent, fetch: fetchFn };
}

const client = (options) =>
  new AutopayAuth({ tokenUrl: as.tokenUrl, tokenRequest: 'form', audience: null, logger: null, ...options });

const assertion = (body) => new URLSearchParams(body).get('client_assertion');

test('client_secret_post, form: a token for the scope asked, then served from memory', async () => {
  const rec = recordingFetch();
  const auth = client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'read', fetch: rec.fetch });
  const info = await auth.getTokenInfo();
  assert.equal(info.source, 'network');
  assert.equal(info.scope, 'read');
  assert.equal((await auth.getTokenInfo()).source, 'memory');
  assert.equal(as.stats.requests, 1);
  assert.equal(rec.sent[0].headers.get('content-type'), 'application/x-www-form-urlencoded');
  assert.deepEqual(Object.fromEntries(new URLSearchParams(rec.sent[0].body)), {
    client_id: 'post-client',
    client_secret: POST_SECRET,
    grant_type: 'client_credentials',
    scope: 'read',
  });
});

test('client_secret_basic: an id and a secret with + % : space & = / ~ ! survive RFC 6749 §2.3.1', async () => {
  const rec = recordingFetch();
  const auth = client({ clientId: 'basic client:1', clientSecret: BASIC_SECRET, clientAuth: 'client_secret_basic', fetch: rec.fetch });
  assert.match(await auth.getToken(), /^[\w-]+$/);
  assert.equal(as.stats.requests, 1);
  assert.match(rec.sent[0].headers.get('authorization'), /^Basic /);
  assert.ok(!rec.sent[0].body.includes('client_secret'), 'no secret in the body');
});

for (const [name, key, form] of [
  ['ES256, a JWK object', 'es256', (k) => ({ privateKey: k.jwk })],
  ['RS256, a PKCS#8 PEM with its key id', 'rs256', (k) => ({ privateKey: k.pem, privateKeyId: k.kid })],
  ['EdDSA, a JWK as JSON text', 'eddsa', (k) => ({ privateKey: JSON.stringify(k.jwk) })],
]) {
  test(`private_key_jwt (${name}): a fresh RFC 7523 assertion per token request`, async () => {
    const k = keys[key];
    const rec = recordingFetch();
    const auth = client({ clientId: `jwt-${key}`, clientAuth: 'private_key_jwt', ...form(k), fetch: rec.fetch });
    const first = await auth.getToken();
    await auth.invalidate();
    const second = await auth.getToken();
    assert.notEqual(first, second);
    assert.equal(as.stats.requests, 2);
    const [a, b] = rec.sent.map((s) => assertion(s.body));
    assert.deepEqual(decodeProtectedHeader(a), { alg: k.alg, kid: k.kid, typ: 'JWT' });
    const claims = decodeJwt(a);
    assert.equal(claims.iss, `jwt-${key}`);
    assert.equal(claims.sub, `jwt-${key}`);
    assert.equal(claims.aud, as.tokenUrl);
    assert.equal(claims.exp - claims.iat, 120);
    assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 5);
    assert.notEqual(decodeJwt(b).jti, claims.jti, 'a new jti for each request');
    for (const s of rec.sent) {
      assert.equal(new URLSearchParams(s.body).get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      assert.ok(!s.body.includes(k.jwk.d), 'the key never leaves');
    }
  });
}

test('a replayed assertion is refused by the server; the client never sends one twice', async () => {
  const rec = recordingFetch();
  const auth = client({ clientId: 'jwt-es256', clientAuth: 'private_key_jwt', privateKey: keys.es256.jwk, fetch: rec.fetch });
  await auth.getToken();
  const replay = await fetch(as.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: rec.sent[0].body });
  assert.equal(replay.status, 401);
  const refusal = await replay.json();
  assert.equal(refusal.error, 'invalid_client');
  assert.match(refusal.error_description, /authentication failed/);
  await auth.invalidate();
  await auth.getToken();
  assert.equal(as.stats.requests, 3, 'the client minted again with a new assertion');
});

test('scope and resource: a JWT access token for that API', async () => {
  const auth = client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'read write', resource: API });
  const info = await auth.getTokenInfo();
  const claims = decodeJwt(info.accessToken);
  assert.equal(claims.aud, API);
  assert.equal(claims.scope, 'read write');
  assert.equal(claims.client_id, 'post-client');
  assert.ok(Math.abs(info.expiresAt / 1000 - claims.exp) < 5, 'the client expires it when the token says');
  const unknown = await rejection(client({ clientId: 'post-client', clientSecret: POST_SECRET, resource: 'https://other.example' }).getToken());
  assert.equal(unknown.code, 'invalid_request');
  assert.equal(unknown.error, 'invalid_target');
  assert.equal(unknown.status, 400);
});

test('JSON bodies, which RFC 6749 servers refuse, reach the caller as the server said it, once', async () => {
  const auth = client({ clientId: 'post-client', clientSecret: POST_SECRET, tokenRequest: 'json' });
  const e = await rejection(auth.getToken());
  assert.equal(e.code, 'invalid_request');
  assert.equal(e.status, 400);
  assert.equal(e.error, 'invalid_request');
  assert.match(e.description, /only application\/x-www-form-urlencoded/);
  await rejection(auth.getToken());
  assert.equal(as.stats.requests, 1, 'held: no second request');
});

test('a wrong secret is held: access_denied with invalid_client, then no further requests', async () => {
  const auth = client({ clientId: 'post-client', clientSecret: 'wrong-secret-000' });
  const calls = await Promise.allSettled(Array.from({ length: 20 }, () => auth.getToken()));
  for (const c of calls) assert.equal(c.reason.code, 'access_denied');
  const e = calls[0].reason;
  assert.equal(e.status, 401);
  assert.equal(e.error, 'invalid_client');
  assert.ok(!JSON.stringify(e).includes('wrong-secret'));
  for (let i = 0; i < 5; i++) assert.equal((await rejection(auth.getToken())).code, 'access_denied');
  assert.equal(as.stats.requests, 1);
});

test('an unknown scope is invalid_request carrying invalid_scope', async () => {
  const e = await rejection(client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'admin' }).getToken());
  assert.equal(e.code, 'invalid_request');
  assert.equal(e.error, 'invalid_scope');
  assert.equal(e.status, 400);
});

test('a burst of 300 cold calls per method makes one token request each', async () => {
  const methods = [
    { clientId: 'post-client', clientSecret: POST_SECRET },
    { clientId: 'basic client:1', clientSecret: BASIC_SECRET, clientAuth: 'client_secret_basic' },
    { clientId: 'jwt-es256', clientAuth: 'private_key_jwt', privateKey: keys.es256.jwk },
  ];
  for (const m of methods) {
    as.reset();
    const auth = client(m);
    const tokens = await Promise.all(Array.from({ length: 300 }, () => auth.getToken()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(as.stats.requests, 1, m.clientAuth ?? 'client_secret_post');
  }
});

test('two clients that differ only in scope, sharing a store, never get each other’s token', async () => {
  const kv = new MemoryKV();
  const read = client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'read', resource: API, kv });
  const write = client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'write', resource: API, kv });
  const [r, w] = await Promise.all([
    Promise.all(Array.from({ length: 50 }, () => read.getToken())),
    Promise.all(Array.from({ length: 50 }, () => write.getToken())),
  ]);
  assert.equal(new Set(r).size, 1);
  assert.equal(new Set(w).size, 1);
  assert.equal(decodeJwt(r[0]).scope, 'read');
  assert.equal(decodeJwt(w[0]).scope, 'write');
  assert.equal(as.stats.requests, 2);
  // a third client of the read scope on the same store is served from it
  const again = client({ clientId: 'post-client', clientSecret: POST_SECRET, scope: 'read', resource: API, kv });
  assert.deepEqual([await again.getToken(), (await again.getTokenInfo()).source], [r[0], 'memory']);
  assert.equal(as.stats.requests, 2);
  const { keys: stored } = await kv.list();
  assert.ok(stored.length >= 2, 'a record per scope');
  for (const { name } of stored) {
    const value = await kv.get(name);
    assert.ok(!value.includes(POST_SECRET) && !value.includes(r[0]) && !value.includes(w[0]), 'sealed');
  }
});

test('a key the platform cannot import is invalid_config naming privateKey, before any request, and held', async () => {
  const bad = { ...keys.es256.jwk, d: 'AA' };
  const auth = client({ clientId: 'jwt-es256', clientAuth: 'private_key_jwt', privateKey: bad });
  const e = await rejection(auth.getToken());
  assert.equal(e.code, 'invalid_config');
  assert.equal(e.option, 'privateKey');
  assert.match(e.message, /could not be imported for ES256/);
  assert.ok(!JSON.stringify({ ...e, m: e.message }).includes(keys.es256.jwk.x));
  await rejection(auth.getToken());
  assert.equal(as.stats.requests, 0);
});

test('bad or contradictory options are invalid_config naming the option, before any request', () => {
  const base = { clientId: 'c', tokenUrl: as.tokenUrl };
  const { d, ...publicJwk } = keys.es256.jwk;
  const cases = [
    [{ ...base, clientAuth: 'private_key_jwt', privateKey: publicJwk }, 'privateKey', /public key/],
    [{ ...base, clientSecret: 's', clientAuth: 'client_secret_jwt' }, 'clientAuth', /private_key_jwt/],
    [{ ...base, clientAuth: 'private_key_jwt' }, 'privateKey', /required/],
    [{ ...base, clientAuth: 'private_key_jwt', privateKey: keys.es256.jwk, clientSecret: 's' }, 'clientSecret', /not used/],
    [{ ...base, clientSecret: 's', privateKey: keys.es256.jwk }, 'privateKey', /only used with private_key_jwt/],
    [{ ...base }, 'clientSecret', /required/],
    [{ ...base, clientSecret: 's', privateKeyAlg: 'ES256' }, 'privateKeyAlg', /only used with privateKey/],
    [{ ...base, clientAuth: 'private_key_jwt', privateKey: keys.es256.jwk, privateKeyAlg: 'RS256' }, 'privateKeyAlg', /does not fit/],
    [{ ...base, clientAuth: 'private_key_jwt', privateKey: keys.rs256.pem.replace('PRIVATE KEY', 'RSA PRIVATE KEY') }, 'privateKey', /PKCS#8/],
    [{ ...base, clientAuth: 'private_key_jwt', privateKey: 42 }, 'privateKey', /JWK or a PKCS#8/],
    [{ ...base, clientSecret: 's', tokenRequest: 'xml' }, 'tokenRequest', /json or form/],
    [{ ...base, clientSecret: 's', scope: 'a  b' }, 'scope', /RFC 6749/],
    [{ ...base, clientSecret: 's', scope: 7 }, 'scope', /string/],
    [{ ...base, clientSecret: 's', resource: ['https://a.example', 5] }, 'resource', /array of strings/],
    [{ ...base, clientSecret: 's', resource: 'not a uri' }, 'resource', /RFC 8707/],
    [{ ...base, clientSecret: 's', defaultExpiresInSec: 1.5 }, 'defaultExpiresInSec', /whole number/],
    [{ ...base, clientSecret: 's', audience: 5 }, 'audience', /string/],
  ];
  for (const [options, field, message] of cases) {
    let e;
    assert.throws(() => new AutopayAuth(options), (err) => ((e = err), true));
    assert.equal(e.code, 'invalid_config', field);
    assert.equal(e.option, field, `${field}: ${e.message}`);
    assert.match(e.message, message);
    assert.ok(!e.message.includes(keys.es256.jwk.d) && !e.message.includes('MII'), 'never the key');
  }
  assert.equal(as.stats.requests, 0);
});

test('answers as real servers send them: bearer in any case, expires_in as a string, none with an assumed lifetime', async () => {
  const emu = await startEmulator({ clientId: 'cid', clientSecret: 'emulated-secret' });
  try {
    const make = (extra = {}) => new AutopayAuth({ clientId: 'cid', clientSecret: 'emulated-secret', tokenUrl: emu.tokenUrl, logger: null, ...extra });
    emu.fault({ status: 200, raw: JSON.stringify({ access_token: 'tok-string', token_type: 'bearer', expires_in: '3600' }) });
    // the type as the server sent it; presented on API calls as RFC 6750 spells the scheme
    const seen = [];
    const fetch = (url, init) => {
      if (!String(url).includes('/api/')) return globalThis.fetch(url, init);
      seen.push(new Headers(init.headers).get('authorization'));
      return Promise.resolve(new Response('{}'));
    };
    const lower = make({ fetch, apiBaseUrl: `${emu.origin}/api` });
    const info = await lower.getTokenInfo();
    assert.equal(info.tokenType, 'bearer');
    await lower.fetch('/v1/me');
    assert.deepEqual(seen, ['Bearer tok-string']);
    assert.ok(info.expiresAt > Date.now() + 3_500_000 && info.expiresAt <= Date.now() + 3_600_000);
    emu.fault({ status: 200, raw: JSON.stringify({ access_token: 'tok-none', token_type: 'Bearer' }) });
    const e = await rejection(make().getToken());
    assert.equal(e.code, 'invalid_response');
    assert.match(e.message, /expires_in/);
    emu.fault({ status: 200, raw: JSON.stringify({ access_token: 'tok-assumed', token_type: 'BEARER' }) });
    const assumed = await make({ defaultExpiresInSec: 600 }).getTokenInfo();
    assert.equal(assumed.accessToken, 'tok-assumed');
    assert.ok(assumed.expiresAt <= Date.now() + 600_000 && assumed.expiresAt > Date.now() + 590_000);
  } finally {
    await emu.close();
  }
});

// The Worker in workerd against a real, certified authorization server (oidc-provider on
// 127.0.0.1): each client authentication, form and JSON bodies, scope and resource, refusals,
// and settings that contradict each other. The count of token requests is the server's own.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { auth, startWorker } from './helpers.mjs';
import { startProvider, clientKeys, API, BASIC_SECRET, POST_SECRET } from '../oidc/provider.mjs';

let as, keys;
before(async () => {
  keys = await clientKeys();
  as = await startProvider(keys);
});
after(() => as.close());
beforeEach(() => as.reset());

/** A Worker speaking RFC 6749 to the provider: form bodies, no audience, and `bindings`. */
const worker = (bindings) =>
  startWorker(as, { AUTOPAY_TOKEN_REQUEST: 'form', AUTOPAY_AUDIENCE: 'none', AUTOPAY_CLIENT_SECRET: null, ...bindings });

async function burst(w, n) {
  const answers = await Promise.all(Array.from({ length: n }, () => w.call('/token', { headers: auth() })));
  const bodies = await Promise.all(answers.map(async (r) => ({ http: r.status, ...(await r.json()) })));
  return bodies;
}

const methods = [
  ['client_secret_post', () => ({ AUTOPAY_CLIENT_ID: 'post-client', AUTOPAY_CLIENT_SECRET: POST_SECRET })],
  ['client_secret_basic', () => ({ AUTOPAY_CLIENT_ID: 'basic client:1', AUTOPAY_CLIENT_SECRET: BASIC_SECRET, AUTOPAY_CLIENT_AUTH: 'client_secret_basic' })],
  ['private_key_jwt, ES256 JWK', () => ({ AUTOPAY_CLIENT_ID: 'jwt-es256', AUTOPAY_CLIENT_AUTH: 'private_key_jwt', AUTOPAY_PRIVATE_KEY: JSON.stringify(keys.es256.jwk) })],
  ['private_key_jwt, RS256 PKCS#8 PEM', () => ({ AUTOPAY_CLIENT_ID: 'jwt-rs256', AUTOPAY_CLIENT_AUTH: 'private_key_jwt', AUTOPAY_PRIVATE_KEY: keys.rs256.pem, AUTOPAY_PRIVATE_KEY_ID: 'rsa-1' })],
  ['private_key_jwt, EdDSA JWK', () => ({ AUTOPAY_CLIENT_ID: 'jwt-eddsa', AUTOPAY_CLIENT_AUTH: 'private_key_jwt', AUTOPAY_PRIVATE_KEY: JSON.stringify(keys.eddsa.jwk) })],
];

for (const [name, settings] of methods) {
  test(`${name}, scope and resource: 100 concurrent cold /token make one token request, a JWT for the API`, async () => {
    const w = await worker({ ...settings(), AUTOPAY_SCOPE: 'read', AUTOPAY_RESOURCE: API });
    try {
      const bodies = await burst(w, 100);
      assert.ok(bodies.every((b) => b.http === 200), JSON.stringify(bodies[0]));
      assert.equal(new Set(bodies.map((b) => b.access_token)).size, 1);
      assert.equal(as.stats.requests, 1);
      const claims = decodeJwt(bodies[0].access_token);
      assert.equal(claims.aud, API);
      assert.equal(claims.scope, 'read');
      assert.equal(bodies[0].scope, 'read');
      const health = await (await w.call('/healthz', { headers: auth() })).text();
      for (const secret of [POST_SECRET, BASIC_SECRET, keys.es256.jwk.d, keys.eddsa.jwk.d]) assert.ok(!health.includes(secret));
    } finally {
      await w.close();
    }
  });
}

test('a wrong secret: 20 /token calls make one token request, each answered 502 with invalid_client', async () => {
  const w = await worker({ AUTOPAY_CLIENT_ID: 'post-client', AUTOPAY_CLIENT_SECRET: 'wrong-secret-0000' });
  try {
    const bodies = await burst(w, 20);
    for (const b of bodies) {
      assert.equal(b.http, 502);
      assert.equal(b.error, 'invalid_client');
      assert.equal(b.status, 401, 'the server’s status');
      assert.match(b.error_description, /authentication failed/);
    }
    assert.equal(as.stats.requests, 1);
  } finally {
    await w.close();
  }
});

test('Autopay’s JSON body, which RFC 6749 servers refuse: the server’s words reach the caller, one request', async () => {
  const w = await worker({ AUTOPAY_CLIENT_ID: 'post-client', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_TOKEN_REQUEST: 'json' });
  try {
    const bodies = await burst(w, 5);
    for (const b of bodies) {
      assert.deepEqual([b.http, b.status, b.error], [502, 400, 'invalid_request']);
      assert.match(b.error_description, /only application\/x-www-form-urlencoded/);
    }
    assert.equal(as.stats.requests, 1);
  } finally {
    await w.close();
  }
});

test('an unknown scope reaches the caller as invalid_scope', async () => {
  const w = await worker({ AUTOPAY_CLIENT_ID: 'post-client', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_SCOPE: 'admin' });
  try {
    const [b] = await burst(w, 1);
    assert.equal(b.error, 'invalid_scope');
  } finally {
    await w.close();
  }
});

test('contradictory settings → 500 naming each setting, never the key or secret', async () => {
  const { d, ...publicJwk } = keys.es256.jwk;
  const jwt = { AUTOPAY_CLIENT_ID: 'jwt-es256', AUTOPAY_CLIENT_AUTH: 'private_key_jwt' };
  const cases = [
    [jwt, ['AUTOPAY_PRIVATE_KEY']],
    [{ ...jwt, AUTOPAY_PRIVATE_KEY: JSON.stringify(publicJwk) }, ['AUTOPAY_PRIVATE_KEY']],
    [{ ...jwt, AUTOPAY_PRIVATE_KEY: JSON.stringify(keys.es256.jwk), AUTOPAY_CLIENT_SECRET: POST_SECRET }, ['AUTOPAY_CLIENT_SECRET']],
    [{ ...jwt, AUTOPAY_PRIVATE_KEY: JSON.stringify(keys.es256.jwk), AUTOPAY_PRIVATE_KEY_ALG: 'RS256' }, ['AUTOPAY_PRIVATE_KEY_ALG']],
    [{ AUTOPAY_CLIENT_ID: 'c', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_CLIENT_AUTH: 'tls_client_auth' }, ['AUTOPAY_CLIENT_AUTH']],
    [{ AUTOPAY_CLIENT_ID: 'c', AUTOPAY_CLIENT_AUTH: 'client_secret_basic' }, ['AUTOPAY_CLIENT_SECRET']],
    [{ AUTOPAY_CLIENT_ID: 'c', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_TOKEN_REQUEST: 'xml', AUTOPAY_RESOURCE: 'not-a-uri' }, ['AUTOPAY_TOKEN_REQUEST']],
    [{ AUTOPAY_CLIENT_ID: 'c', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_RESOURCE: 'not-a-uri' }, ['AUTOPAY_RESOURCE']],
    [{ AUTOPAY_CLIENT_ID: 'c', AUTOPAY_CLIENT_SECRET: POST_SECRET, AUTOPAY_DEFAULT_EXPIRES_IN: 'soon' }, ['AUTOPAY_DEFAULT_EXPIRES_IN']],
  ];
  for (const [bindings, names] of cases) {
    const w = await worker(bindings);
    try {
      const r = await w.call('/token', { headers: auth() });
      const text = await r.text();
      assert.equal(r.status, 500, text);
      const body = JSON.parse(text);
      assert.equal(body.error, 'misconfigured');
      assert.deepEqual(body.settings.map((s) => s.setting).sort(), [...names].sort(), text);
      assert.ok(!text.includes(d) && !text.includes(POST_SECRET) && !text.includes('MII'), text);
    } finally {
      await w.close();
    }
  }
  assert.equal(as.stats.requests, 0);
});

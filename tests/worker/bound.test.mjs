// Sender-constrained tokens through the Worker in workerd: DPoP (the Durable Object's token
// requests and every proxied call carry a proof of the tenant's key, nonces answered) and
// mutual TLS (token requests and proxied calls through the mTLS certificate binding — here a
// workerd network service presenting the client certificate, the way Cloudflare's binding does),
// against oidc-provider and a resource server that verifies each binding.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { auth, startWorker } from './helpers.mjs';
import { SECRET, dpopKey, startBoundProvider, startResourceServer } from '../oidc/bound.mjs';

let as, rs, key;
before(async () => {
  as = await startBoundProvider();
  rs = await startResourceServer(as);
  key = await dpopKey('ES256');
});
after(() => Promise.all([as.close(), rs.close()]));
beforeEach(() => as.reset());

const SEAL = 'seal-secret-0123456789abcdefghijklmnop';
const rfc6749 = { AUTOPAY_TOKEN_REQUEST: 'form', AUTOPAY_AUDIENCE: 'none' };

test('DPoP: 60 concurrent proxied calls, one token for the Worker, every call with its own verified proof', async () => {
  const w = await startWorker(
    { tokenUrl: as.tokenUrl, origin: rs.url },
    { ...rfc6749, AUTOPAY_API_BASE: rs.url, AUTOPAY_CLIENT_ID: 'dpop-client', AUTOPAY_CLIENT_SECRET: SECRET, AUTOPAY_DPOP_KEY: JSON.stringify(key.jwk) },
  );
  try {
    const before = rs.stats.proofsVerified;
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => w.call(`/v1/worker/${i}?x=1`, { headers: auth() })));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200], JSON.stringify(bodies.slice(0, 3)));
    assert.ok(bodies.every((b) => b.bound === 'dpop'));
    assert.equal(as.stats.issued, 1, 'one token');
    assert.equal(as.stats.requests, 2, 'the first token request met the nonce challenge');
    // warm calls, one after another: each still signed
    for (let i = 0; i < 5; i += 1) {
      const r = await w.call(`/v1/worker/warm/${i}`, { headers: auth() });
      assert.equal(r.status, 200);
    }
    assert.equal(rs.stats.proofsVerified - before, 65, 'a proof per call');
    // /token hands out the bound token, typed: useless without the key
    const token = await (await w.call('/token', { headers: auth() })).json();
    assert.equal(token.token_type, 'DPoP');
    const stolen = await fetch(`${rs.url}/v1/stolen`, { headers: { authorization: `Bearer ${token.access_token}` } });
    assert.equal((await stolen.json()).error, 'dpop_token_as_bearer');
  } finally {
    await w.close();
  }
});

test('mutual TLS: token requests and proxied calls through the certificate binding; the token is bound to its certificate', async () => {
  const network = (cert) => ({
    network: {
      allow: ['local', 'private', 'public'],
      tlsOptions: { keypair: { privateKey: cert.key, certificateChain: cert.cert }, trustedCertificates: [as.certs.ca] },
    },
  });
  const w = await startWorker(
    { tokenUrl: as.tlsTokenUrl, origin: rs.tlsUrl },
    { ...rfc6749, AUTOPAY_API_BASE: rs.tlsUrl, AUTOPAY_CLIENT_ID: 'mtls-client', AUTOPAY_CLIENT_SECRET: null, AUTOPAY_CLIENT_AUTH: 'tls_client_auth', AUTOPAY_SEAL_SECRET: SEAL },
    {
      serviceBindings: { AUTOPAY_MTLS: network(as.certs.client) },
      // the platform's own fetch reaches the API too (it trusts the test CA) but presents no
      // certificate: a call made with it would be refused, not fail to connect
      outboundService: { network: { allow: ['local', 'private', 'public'], tlsOptions: { trustedCertificates: [as.certs.ca] } } },
    },
  );
  const mismatches = () => rs.stats.refused.certificate_mismatch ?? 0;
  const before = mismatches();
  try {
    const answers = await Promise.all(Array.from({ length: 30 }, () => w.call('/v1/mtls', { headers: auth() })));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200], JSON.stringify(bodies[0]));
    assert.ok(bodies.every((b) => b.bound === 'mtls' && b.client === 'mtls-client'));
    // warm calls, one after another (the isolate's front answers these from its lease): still
    // through the binding, never the platform's own fetch
    for (let i = 0; i < 5; i += 1) {
      const r = await w.call(`/v1/mtls/warm/${i}`, { headers: auth() });
      assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
    }
    assert.equal(mismatches() - before, 0, 'no call without the certificate');
    assert.equal(as.stats.issued, 1);
  } finally {
    await w.close();
  }
});

test('mutual TLS is refused without the binding, and the binding without a mutual-TLS method', async () => {
  const cases = [
    [{ AUTOPAY_CLIENT_AUTH: 'tls_client_auth', AUTOPAY_CLIENT_SECRET: null, AUTOPAY_SEAL_SECRET: SEAL }, {}, 'AUTOPAY_CLIENT_AUTH'],
    [{ AUTOPAY_CLIENT_AUTH: 'tls_client_auth', AUTOPAY_CLIENT_SECRET: null }, { serviceBindings: { AUTOPAY_MTLS: { network: { allow: ['local'] } } } }, 'AUTOPAY_SEAL_SECRET'],
    [{}, { serviceBindings: { AUTOPAY_MTLS: { network: { allow: ['local'] } } } }, 'AUTOPAY_MTLS'],
  ];
  for (const [bindings, options, setting] of cases) {
    const w = await startWorker({ tokenUrl: as.tlsTokenUrl, origin: rs.tlsUrl }, { ...rfc6749, AUTOPAY_API_BASE: rs.tlsUrl, ...bindings }, options);
    try {
      const r = await w.call('/token', { headers: auth() });
      const body = await r.json();
      assert.equal(r.status, 500, JSON.stringify(body));
      assert.ok(JSON.stringify(body).includes(setting), `${setting}: ${JSON.stringify(body)}`);
      assert.ok(!JSON.stringify(body).includes(SEAL));
    } finally {
      await w.close();
    }
  }
  assert.equal(as.stats.requests, 0, 'nothing sent');
});

// DPoP (RFC 9449) with the packed package in Node, against oidc-provider requiring server nonces
// and a resource server that verifies every proof (its key against the token's `cnf.jkt`, the
// method, URL and token hash it names, its own nonce, a `jti` never seen) — over plain HTTP and
// behind a local TLS endpoint. The counts of token requests are the server's own.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose';
import { Agent } from 'undici';
import { importPackage } from './helpers.mjs';
import { SECRET, dpopKey, startBoundProvider, startResourceServer } from '../oidc/bound.mjs';

let as, rs, AutopayAuth, MemoryKV, key;
before(async () => {
  ({ AutopayAuth, MemoryKV } = await importPackage());
  as = await startBoundProvider();
  rs = await startResourceServer(as);
  key = await dpopKey('ES256');
});
after(() => Promise.all([as.close(), rs.close()]));
beforeEach(() => as.reset());

/** Every request the client sends, as it left. */
function recordingFetch(dispatcher) {
  const sent = [];
  const fetchFn = (url, init = {}) => {
    sent.push({ url: String(url), method: init.method ?? 'GET', headers: new Headers(init.headers) });
    return fetch(url, dispatcher ? { ...init, dispatcher } : init);
  };
  return { sent, fetch: fetchFn };
}

const client = (options) =>
  new AutopayAuth({
    tokenUrl: as.tokenUrl,
    tokenRequest: 'form',
    audience: null,
    clientId: 'dpop-client',
    clientSecret: SECRET,
    apiBaseUrl: rs.url,
    logger: null,
    dpopKey: key.jwk,
    ...options,
  });

const claims = (proof) => decodeJwt(proof);

/** What `fn` throws. */
function thrown(fn) {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected a throw');
}

test('a DPoP-bound token: the nonce the server asks for is learned once, and the token is bound to the key', async () => {
  const rec = recordingFetch();
  const auth = client({ fetch: rec.fetch });
  const info = await auth.getTokenInfo();
  assert.equal(info.tokenType, 'DPoP');
  // the first request had no nonce, the server asked for one, the second carried it
  assert.equal(as.stats.requests, 2);
  assert.equal(as.stats.nonceChallenges, 1);
  assert.equal(as.stats.issued, 1);
  const [first, second] = rec.sent.map((s) => s.headers.get('dpop'));
  assert.equal(claims(first).nonce, undefined);
  assert.equal(typeof claims(second).nonce, 'string');
  for (const proof of [first, second]) {
    const header = decodeProtectedHeader(proof);
    assert.equal(header.typ, 'dpop+jwt');
    assert.equal(header.alg, 'ES256');
    assert.equal(header.jwk.d, undefined, 'never the private key');
    assert.equal(claims(proof).htm, 'POST');
    assert.equal(claims(proof).htu, as.tokenUrl);
    assert.equal(claims(proof).ath, undefined, 'no token to hash yet');
  }
  assert.notEqual(claims(first).jti, claims(second).jti);
  const jkt = await calculateJwkThumbprint(decodeProtectedHeader(second).jwk);
  assert.equal(decodeJwt(info.accessToken).cnf.jkt, jkt);
  // the nonce is remembered: a refresh sends it at once
  await auth.invalidate();
  await auth.getToken();
  assert.equal(as.stats.requests, 3, 'one request more, no second challenge');
});

test('auth.fetch: a fresh proof per call, the API nonce learned and retried once, the token kept', async () => {
  const rec = recordingFetch();
  const auth = client({ fetch: rec.fetch });
  const before = { ...rs.stats, refused: { ...rs.stats.refused } };
  for (let i = 0; i < 3; i += 1) {
    const res = await auth.fetch(`/v1/items/${i}?page=2`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { ok: true, client: 'dpop-client', bound: 'dpop' });
  }
  const calls = rec.sent.filter((s) => s.url.startsWith(rs.url));
  // the first call met the API's nonce challenge and was made again; the others carried it
  assert.equal(calls.length, 4);
  assert.equal(rs.stats.nonceChallenges - before.nonceChallenges, 1);
  assert.equal(rs.stats.proofsVerified - before.proofsVerified, 3);
  const { accessToken } = await auth.getTokenInfo();
  for (const c of calls) {
    assert.equal(c.headers.get('authorization'), `DPoP ${accessToken}`);
    const p = claims(c.headers.get('dpop'));
    assert.equal(p.htm, 'GET');
    assert.match(p.htu, new RegExp(`^${rs.url}/v1/items/\\d$`), 'no query in htu');
    assert.equal(p.ath, createHash('sha256').update(accessToken).digest('base64url'));
  }
  assert.equal(new Set(calls.map((c) => claims(c.headers.get('dpop')).jti)).size, 4, 'every proof its own jti');
  assert.equal(as.stats.issued, 1, 'a nonce challenge never drops the token');
  assert.equal(auth.stats().mints, 1);
});

test('callers with their own HTTP client: authorize() gives a proof for exactly that call; a replay and a stolen token are refused', async () => {
  const auth = client({});
  const url = `${rs.url}/v1/own?x=1`;
  // the API's nonce, learned from its challenge
  let headers = await auth.authorize('get', url);
  let res = await fetch(url, { headers });
  assert.equal(res.status, 401);
  assert.equal(auth.learnNonce(url, res.headers.get('dpop-nonce')), true);
  assert.equal(auth.learnNonce(url, res.headers.get('dpop-nonce')), false, 'the same nonce is no news');
  headers = await auth.authorize('GET', url);
  assert.deepEqual(Object.keys(headers).sort(), ['authorization', 'dpop']);
  res = await fetch(url, { headers });
  assert.equal(res.status, 200);
  // the same proof again: refused as a replay
  res = await fetch(url, { headers });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, 'replayed_proof');
  // the token alone, as a bearer token: refused
  const token = headers.authorization.split(' ')[1];
  res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await res.json()).error, 'dpop_token_as_bearer');
  // the token with a proof of another key: refused
  const thief = client({ dpopKey: (await dpopKey('ES256')).jwk });
  const stolen = await thief.authorize('GET', url);
  thief.learnNonce(url, res.headers.get('dpop-nonce'));
  res = await fetch(url, { headers: { authorization: headers.authorization, dpop: stolen.dpop } });
  assert.equal(res.status, 401);
  assert.match((await res.json()).error, /proof_for_another_request|proof_of_another_key/);
  // a proof for another method is refused too
  res = await fetch(url, { method: 'DELETE', headers: await auth.authorize('GET', url) });
  assert.equal((await res.json()).error, 'proof_for_another_request');
});

test('a PKCS#8 DPoP key works as a JWK does (its public key read through WebCrypto); another key is another cache entry', async () => {
  const kv = new MemoryKV();
  const pemClient = client({ kv, dpopKey: key.pem });
  const twin = client({ kv, dpopKey: key.pem });
  assert.equal(twin.cacheKey, pemClient.cacheKey, 'the same key, the same token');
  const other = client({ kv, dpopKey: (await dpopKey('ES256')).pem });
  assert.notEqual(other.cacheKey, pemClient.cacheKey, 'tokens bound to another key are never shared');
  const plain = new AutopayAuth({ tokenUrl: as.tokenUrl, tokenRequest: 'form', audience: null, clientId: 'dpop-client', clientSecret: SECRET, logger: null });
  assert.notEqual(plain.cacheKey, pemClient.cacheKey, 'nor with a client that has no key');
  const info = await pemClient.getTokenInfo();
  assert.equal(info.tokenType, 'DPoP');
  assert.equal((await twin.getTokenInfo()).source, 'kv', 'the twin reads the token its fleet minted');
  const res = await pemClient.fetch('/v1/pem');
  assert.equal(res.status, 200);
  const ed = await dpopKey('EdDSA');
  const edClient = client({ dpopKey: ed.pem });
  assert.equal((await edClient.getTokenInfo()).tokenType, 'DPoP', 'Ed25519 from PKCS#8');
});

test('over TLS: the same flow behind a local HTTPS endpoint', async () => {
  const dispatcher = new Agent({ connect: { ca: as.certs.ca } });
  const rec = recordingFetch(dispatcher);
  const auth = client({ tokenUrl: as.tlsTokenUrl, apiBaseUrl: rs.tlsUrl, fetch: rec.fetch });
  const res = await auth.fetch('/v1/tls');
  assert.equal(res.status, 200);
  assert.equal((await res.json()).bound, 'dpop');
  assert.equal(claims(rec.sent[0].headers.get('dpop')).htu, as.tlsTokenUrl);
  await dispatcher.close();
});

test('bad DPoP options are invalid_config naming the option, never the key', async () => {
  const bad = [
    [{ dpopKey: 'not a key' }, 'dpopKey'],
    [{ dpopKey: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' } }, 'dpopKey'],
    [{ dpopKey: key.jwk, dpopKeyAlg: 'RS256' }, 'dpopKeyAlg'],
    [{ dpopKey: undefined, dpopKeyAlg: 'ES256' }, 'dpopKeyAlg'],
    [{ dpopKey: 42 }, 'dpopKey'],
  ];
  for (const [options, field] of bad) {
    const e = thrown(() => client(options));
    assert.equal(e.code, 'invalid_config', JSON.stringify(options));
    assert.equal(e.option, field);
    assert.ok(!String(e.message).includes(key.jwk.d), 'never the key');
  }
  // Autopay's endpoint speaks no DPoP: a DPoP configuration must name its own endpoint
  const e = thrown(() => new AutopayAuth({ clientId: 'c', clientSecret: 's', dpopKey: key.jwk, logger: null }));
  assert.equal(e.code, 'invalid_config');
  assert.equal(e.option, 'tokenUrl');
});

test('a client without a DPoP key sends no proof, and a server that requires DPoP refuses it', async () => {
  const rec = recordingFetch();
  const auth = client({ dpopKey: undefined, fetch: rec.fetch });
  const e = await auth.getToken().then(() => null, (err) => err);
  assert.equal(e?.code, 'invalid_request', 'RFC 6749 §5.2: the proof the client must send is missing');
  assert.equal(rec.sent[0].headers.get('dpop'), null);
});

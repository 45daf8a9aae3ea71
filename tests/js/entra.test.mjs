// Microsoft Entra ID's certificate credentials, against a token endpoint on 127.0.0.1 that checks
// assertions as Entra does: the certificate registered for the app is found by the header's
// `x5t#S256` (the SHA-256 thumbprint of its DER), the PS256 signature is verified with that
// certificate's public key, and `aud`, `iss`, `sub`, `exp` and a fresh `jti` are checked; with
// `x5c`, the chain sent must be the certificate itself. The key and certificate are made here by
// openssl, as a user makes them for an app registration.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import { importPackage, rejection } from './helpers.mjs';

const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
let AutopayAuth, dir, key, cert, entra;

/** An Entra-like token endpoint for one app registration with `certificate`. */
async function entraLike(certificate) {
  const thumbprint = createHash('sha256').update(new X509Certificate(certificate).raw).digest('base64url');
  const publicKey = await importX509(certificate, 'PS256');
  const seen = new Set();
  const state = { requests: 0, refusals: [] };
  const refuse = (res, why) => {
    state.refusals.push(why);
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'invalid_client', error_description: why }));
  };
  const server = createServer(async (req, res) => {
    state.requests++;
    let body = '';
    for await (const c of req) body += c;
    const form = new URLSearchParams(body);
    const assertion = form.get('client_assertion') ?? '';
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return refuse(res, 'AADSTS50027: no assertion');
    if (form.get('grant_type') !== 'client_credentials' || !form.get('scope')?.endsWith('/.default')) return refuse(res, 'AADSTS70011: bad request');
    let header;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      return refuse(res, 'AADSTS50027: not a JWT');
    }
    if (header['x5t#S256'] !== thumbprint) return refuse(res, 'AADSTS700027: no registered certificate with this thumbprint');
    if (header.x5c && Buffer.from(header.x5c[0], 'base64').compare(new X509Certificate(certificate).raw) !== 0) return refuse(res, 'AADSTS700027: x5c is not the certificate');
    try {
      const { payload } = await jwtVerify(assertion, publicKey, { algorithms: ['PS256'], audience: `${origin}/tenant/oauth2/v2.0/token`, issuer: CLIENT_ID, subject: CLIENT_ID, maxTokenAge: '10 minutes' });
      if (!payload.jti || seen.has(payload.jti)) return refuse(res, 'AADSTS700025: assertion replayed');
      seen.add(payload.jti);
      state.header = header;
    } catch (e) {
      return refuse(res, `AADSTS700027: ${e.code}`);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: `eyJ0.${state.requests}.sig` }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { state, thumbprint, tokenUrl: `${origin}/tenant/oauth2/v2.0/token`, close: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  ({ AutopayAuth } = await importPackage());
  dir = mkdtempSync(join(tmpdir(), 'autopay-auth-entra-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=autopay-auth-entra-test'], { stdio: 'pipe' });
  key = readFileSync(join(dir, 'key.pem'), 'utf8');
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  entra = await entraLike(cert);
});
after(async () => {
  await entra?.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = (extra) =>
  new AutopayAuth({
    tokenUrl: entra.tokenUrl,
    tokenRequest: 'form',
    clientId: CLIENT_ID,
    clientAuth: 'private_key_jwt',
    privateKey: key,
    privateKeyAlg: 'PS256',
    audience: null,
    scope: 'api://autopay-auth-test/.default',
    logger: null,
    ...extra,
  });

test('a certificate credential: the assertion names the certificate by x5t#S256 — the SHA-256 of its DER — and the endpoint that verifies it issues a token', async () => {
  const before = entra.state.requests;
  const token = await client({ certificate: cert }).getToken();
  assert.match(token, /^eyJ0\./);
  assert.equal(entra.state.requests - before, 1);
  assert.deepEqual(entra.state.refusals, []);
  const expected = createHash('sha256').update(new X509Certificate(cert).raw).digest('base64url');
  assert.equal(entra.state.header['x5t#S256'], expected);
  assert.equal(entra.state.header.alg, 'PS256');
  assert.equal(entra.state.header.x5c, undefined);
});

test('x5c: true sends the certificate itself, and it is accepted', async () => {
  await client({ certificate: cert, x5c: true }).getToken();
  assert.equal(Buffer.from(entra.state.header.x5c[0], 'base64').compare(new X509Certificate(cert).raw), 0);
});

test('without the certificate Entra cannot tell which key signed: refused (access_denied), as Entra refuses it', async () => {
  const e = await rejection(client({}).getToken());
  assert.equal(e.code, 'access_denied');
  assert.match(entra.state.refusals.at(-1), /thumbprint/);
});

test('certificate and x5c are checked, and named', async () => {
  for (const [extra, option] of [
    [{ certificate: 'not a certificate' }, 'certificate'],
    [{ certificate: cert, x5c: 'yes' }, 'x5c'],
    [{ x5c: true }, 'x5c'],
  ]) {
    assert.throws(() => client(extra), (e) => e.code === 'invalid_config' && e.option === option, option);
  }
  assert.throws(
    () => new AutopayAuth({ tokenUrl: entra.tokenUrl, clientId: CLIENT_ID, clientSecret: 's', audience: null, certificate: cert }),
    (e) => e.code === 'invalid_config' && e.option === 'certificate',
  );
});

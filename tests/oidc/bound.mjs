// Sender-constrained tokens against a real server: panva's oidc-provider with DPoP (RFC 9449,
// server nonces required) and mutual TLS (RFC 8705: tls_client_auth, self_signed_tls_client_auth,
// certificate-bound tokens), on 127.0.0.1 — over plain HTTP and behind a TLS endpoint that asks
// for client certificates — and a resource server that verifies the binding the way RFC 9449 §7
// and RFC 8705 §3 have it: the proof's key thumbprint against `cnf.jkt` (with `htm`, `htu`,
// `iat`, `ath`, its own nonce, and a `jti` never seen before), the client certificate against
// `cnf.x5t#S256`. Every refusal is counted by kind, so tests assert what was refused and why.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider, { errors } from 'oidc-provider';
import { EmbeddedJWK, calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

export const API = 'https://api.example.test';
export const SECRET = 'dpop-secret-value-DO-NOT-LEAK-31';
export const MTLS_SUBJECT = 'CN=autopay-mtls-client';

/** A CA, a server certificate for 127.0.0.1 and two client certificates (one the CA signed, one
 * self-signed), made with openssl in a temporary folder: PEM texts. */
export function certificates() {
  const dir = mkdtempSync(join(tmpdir(), 'autopay-mtls-'));
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=autopay test CA');
    const leaf = (name, subj, ext) => {
      ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj);
      const extra = ext ? ['-extfile', ext] : [];
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...extra);
    };
    // X.509 v3 (extensions), which rustls and webpki require
    execFileSync('sh', ['-c', 'echo "subjectAltName=IP:127.0.0.1" > san.ext; echo "extendedKeyUsage=clientAuth" > client.ext'], { cwd: dir });
    leaf('server', '/CN=127.0.0.1', 'san.ext');
    leaf('client', `/${MTLS_SUBJECT}`, 'client.ext');
    ssl('req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=autopay-self-signed');
    return {
      ca: read('ca.pem'),
      server: { cert: read('server.pem'), key: read('server.key') },
      client: { cert: read('client.pem'), key: read('client.key') },
      selfSigned: { cert: read('self.pem'), key: read('self.key') },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const thumbprintOf = (der) => createHash('sha256').update(der).digest('base64url');
const pemBody = (pem) => pem.replace(/-----[^-]+-----|\s/g, '');

/** The peer certificate of a TLS request, if it sent one. */
function peerCertificate(socket) {
  const c = socket?.getPeerCertificate?.();
  return c?.raw ? new X509Certificate(c.raw) : undefined;
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

/** Starts the provider, on HTTP and on HTTPS (asking for client certificates), with clients:
 * `dpop-client` (secret, DPoP-bound tokens), `mtls-client` (tls_client_auth, subject
 * `MTLS_SUBJECT`) and `self-signed-client` (self_signed_tls_client_auth), both certificate-bound.
 * Counts token requests and tokens issued (per client) in `stats`. */
export async function startBoundProvider(certs = certificates()) {
  const http = createHttp();
  const https = createHttps({ key: certs.server.key, cert: certs.server.cert, ca: [certs.ca], requestCert: true, rejectUnauthorized: false });
  const [httpPort, httpsPort] = [await listen(http), await listen(https)];
  const issuer = `http://127.0.0.1:${httpPort}`;
  const machine = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'read', id_token_signed_response_alg: 'ES256' };
  const selfPublic = createPublicKey(certs.selfSigned.cert).export({ format: 'jwk' });
  const { privateKey: signing } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk = { ...(await exportJWK(signing)), kid: 'as-1', alg: 'ES256', use: 'sig' };
  const { d: _d, ...publicSigning } = signingJwk;
  const provider = new Provider(issuer, {
    clients: [
      { ...machine, client_id: 'dpop-client', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', dpop_bound_access_tokens: true },
      { ...machine, client_id: 'mtls-client', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: MTLS_SUBJECT, tls_client_certificate_bound_access_tokens: true },
      {
        ...machine,
        client_id: 'self-signed-client',
        token_endpoint_auth_method: 'self_signed_tls_client_auth',
        tls_client_certificate_bound_access_tokens: true,
        jwks: { keys: [{ ...selfPublic, x5c: [pemBody(certs.selfSigned.cert)] }] },
      },
    ],
    jwks: { keys: [signingJwk] },
    scopes: ['read'],
    clientAuthMethods: ['client_secret_post', 'tls_client_auth', 'self_signed_tls_client_auth'],
    ttl: { ClientCredentials: 3600 },
    enabledJWA: { dPoPSigningAlgValues: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA', 'Ed25519'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== API) throw new errors.InvalidTarget();
          return { scope: 'read', audience: API, accessTokenFormat: 'jwt', accessTokenTTL: 1800, jwt: { sign: { alg: 'ES256' } } };
        },
      },
      dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: (ctx) => peerCertificate(ctx.socket),
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) =>
          property === 'tls_client_auth_subject_dn' && peerCertificate(ctx.socket)?.subject === expected.replace(/^CN=/, 'CN='),
      },
    },
  });
  provider.on('server_error', () => {});
  const stats = { requests: 0, issued: 0, nonceChallenges: 0, byClient: {} };
  const handle = provider.callback();
  const count = (req, res) => {
    if (req.method === 'POST' && req.url === '/token') {
      stats.requests += 1;
      res.on('finish', () => {
        if (res.statusCode === 200) stats.issued += 1;
        if (res.statusCode === 400 && res.getHeader('dpop-nonce')) stats.nonceChallenges += 1;
      });
    }
    if (req.url === '/__stats') return res.end(JSON.stringify(stats));
    handle(req, res);
  };
  http.on('request', count);
  https.on('request', count);
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    tlsTokenUrl: `https://127.0.0.1:${httpsPort}/token`,
    jwks: { keys: [publicSigning] },
    certs,
    stats,
    reset() {
      Object.assign(stats, { requests: 0, issued: 0, nonceChallenges: 0, byClient: {} });
    },
    close: () => Promise.all([http, https].map((s) => new Promise((resolve) => { s.closeAllConnections?.(); s.close(resolve); }))),
  };
}

/** A resource server for the provider's tokens, on HTTP and on HTTPS (asking for client
 * certificates). A bound token is accepted only with its binding: a DPoP token with a valid proof
 * of the key in `cnf.jkt` (made for this method and URL, recent, carrying this server's nonce and
 * the token's hash, its `jti` never used before); a certificate-bound token only over a TLS
 * connection that presented the certificate in `cnf.x5t#S256`. `stats` counts what it accepted
 * and each kind of refusal. */
export async function startResourceServer(as, { nonce = true } = {}) {
  const keys = createLocalJWKSet(as.jwks);
  const seen = new Set();
  let current = randomBytes(12).toString('base64url');
  const stats = { ok: 0, proofsVerified: 0, nonceChallenges: 0, refused: {} };
  const refuse = (res, kind, challenge, extra = {}) => {
    stats.refused[kind] = (stats.refused[kind] ?? 0) + 1;
    res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json', ...extra });
    res.end(JSON.stringify({ error: kind }));
  };
  const handler = (proto, port) => async (req, res) => {
    if (req.url === '/__stats') return res.end(JSON.stringify(stats));
    if (req.url === '/__rotate') {
      current = randomBytes(12).toString('base64url');
      return res.end('{}');
    }
    const [scheme, token] = (req.headers.authorization ?? '').split(' ');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token ?? '', keys, { audience: API }));
    } catch {
      return refuse(res, 'invalid_token', 'Bearer error="invalid_token"');
    }
    const jkt = claims.cnf?.jkt;
    const x5t = claims.cnf?.['x5t#S256'];
    if (jkt) {
      if (scheme !== 'DPoP') return refuse(res, 'dpop_token_as_bearer', 'DPoP error="invalid_token"');
      const proof = req.headers.dpop;
      let verified;
      try {
        verified = await jwtVerify(proof ?? '', EmbeddedJWK, { typ: 'dpop+jwt', maxTokenAge: '60s', clockTolerance: 5 });
      } catch {
        return refuse(res, 'invalid_dpop_proof', 'DPoP error="invalid_dpop_proof"');
      }
      const { payload, protectedHeader } = verified;
      const url = `${proto}://127.0.0.1:${port}${req.url.split('?')[0]}`;
      const ath = createHash('sha256').update(token).digest('base64url');
      if (payload.htm !== req.method || payload.htu !== url || payload.ath !== ath) {
        return refuse(res, 'proof_for_another_request', 'DPoP error="invalid_dpop_proof"');
      }
      if ((await calculateJwkThumbprint(protectedHeader.jwk)) !== jkt) {
        return refuse(res, 'proof_of_another_key', 'DPoP error="invalid_token"');
      }
      if (nonce && payload.nonce !== current) {
        stats.nonceChallenges += 1;
        return refuse(res, 'use_dpop_nonce', 'DPoP error="use_dpop_nonce"', { 'dpop-nonce': current });
      }
      if (seen.has(payload.jti)) return refuse(res, 'replayed_proof', 'DPoP error="invalid_dpop_proof"');
      seen.add(payload.jti);
      stats.proofsVerified += 1;
    } else if (scheme !== 'Bearer') {
      return refuse(res, 'invalid_token', 'Bearer error="invalid_token"');
    }
    if (x5t) {
      const cert = peerCertificate(req.socket);
      if (!cert || thumbprintOf(cert.raw) !== x5t) return refuse(res, 'certificate_mismatch', 'Bearer error="invalid_token"');
    }
    stats.ok += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, client: claims.client_id, bound: jkt ? 'dpop' : x5t ? 'mtls' : 'bearer' }));
  };
  const http = createHttp();
  const https = createHttps({ key: as.certs.server.key, cert: as.certs.server.cert, ca: [as.certs.ca], requestCert: true, rejectUnauthorized: false });
  const [httpPort, httpsPort] = [await listen(http), await listen(https)];
  http.on('request', handler('http', httpPort));
  https.on('request', handler('https', httpsPort));
  return {
    url: `http://127.0.0.1:${httpPort}`,
    tlsUrl: `https://127.0.0.1:${httpsPort}`,
    stats,
    close: () => Promise.all([http, https].map((s) => new Promise((resolve) => { s.closeAllConnections?.(); s.close(resolve); }))),
  };
}

/** A DPoP key pair for a client: the private key as a JWK and as PKCS#8 PEM. */
export async function dpopKey(alg = 'ES256') {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const { exportPKCS8 } = await import('jose');
  return { alg, jwk: await exportJWK(privateKey), pem: await exportPKCS8(privateKey) };
}

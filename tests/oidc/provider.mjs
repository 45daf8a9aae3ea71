// A real, certified OpenID provider (panva's oidc-provider) on 127.0.0.1, set up the way an
// operator would for machine-to-machine clients: client credentials, resource indicators
// (JWT access tokens for an API) and one client per authentication method. It counts what
// reaches its token endpoint, so tests can assert how many token requests a client made.
import { createServer } from 'node:http';
import Provider, { errors } from 'oidc-provider';
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';

export const API = 'https://api.example.test';
export const SCOPES = 'read write';
/** A secret with the characters RFC 6749 §2.3.1's form-encoding must carry through Basic (any
 * VSCHAR, Appendix A: printable ASCII and space). */
export const BASIC_SECRET = 'b+s%e:c r&e=t/~!';
export const POST_SECRET = 'post-secret-value-DO-NOT-LEAK-77';

/** Signing keys for the `private_key_jwt` clients: a P-256 JWK, an RSA PKCS#8 PEM and an
 * Ed25519 JWK, each private half for the client and public half registered with the server. */
export async function clientKeys() {
  const pair = async (alg, kid, opts = {}) => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...opts });
    return { alg, kid, jwk: { ...(await exportJWK(privateKey)), kid }, pem: await exportPKCS8(privateKey), public: { ...(await exportJWK(publicKey)), kid, alg } };
  };
  return {
    es256: await pair('ES256', 'ec-1'),
    rs256: await pair('RS256', 'rsa-1'),
    eddsa: await pair('EdDSA', 'ed-1', { crv: 'Ed25519' }),
    ps256: await pair('PS256', 'rsa-pss-1'),
    es384: await pair('ES384', 'ec-384-1'),
  };
}

/** Starts the provider. `keys` from `clientKeys()`. Returns its token URL, the count of token
 * requests that reached it (`stats.requests`), `reset()`, and `close()`. */
export async function startProvider(keys) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const machine = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: SCOPES, id_token_signed_response_alg: 'ES256' };
  const jwtClient = (id, key) => ({
    ...machine,
    client_id: id,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: key.alg,
    jwks: { keys: [key.public] },
  });
  const { privateKey: signing } = await generateKeyPair('ES256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: [
      { ...machine, client_id: 'post-client', client_secret: POST_SECRET, token_endpoint_auth_method: 'client_secret_post' },
      { ...machine, client_id: 'basic client:1', client_secret: BASIC_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
      jwtClient('jwt-es256', keys.es256),
      jwtClient('jwt-rs256', keys.rs256),
      jwtClient('jwt-eddsa', keys.eddsa),
      jwtClient('jwt-ps256', keys.ps256),
      jwtClient('jwt-es384', keys.es384),
    ],
    jwks: { keys: [{ ...(await exportJWK(signing)), kid: 'as-1', alg: 'ES256', use: 'sig' }] },
    // ES384 besides the defaults (RS256, PS256, ES256, EdDSA): one curve more for the signers
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'ES384', 'Ed25519', 'EdDSA'] },
    // `admin` exists, but no client here may ask for it
    scopes: ['read', 'write', 'admin'],
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // an API with its own audience gets JWT access tokens; anything else is invalid_target
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== API) throw new errors.InvalidTarget();
          return { scope: SCOPES, audience: API, accessTokenFormat: 'jwt', accessTokenTTL: 1800, jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
  });
  // oidc-provider logs every error it answers; the tests assert them instead
  provider.on('server_error', () => {});
  const stats = { requests: 0 };
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/token') stats.requests += 1;
    // for tests in other processes (the native client's): the count, as JSON
    if (req.url === '/__stats') return res.end(JSON.stringify(stats));
    handle(req, res);
  });
  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    origin: issuer,
    stats,
    provider,
    reset() {
      stats.requests = 0;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

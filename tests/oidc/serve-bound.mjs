// oidc-provider with DPoP and mutual TLS, and its resource server (tests/oidc/bound.mjs), in a
// process of their own, for the native client's tests and the multi-process fleet: prints one JSON
// line — the token URLs (HTTP and TLS), the API's, the test CA, the client certificates with
// their keys, and a DPoP key (JWK and PKCS#8 PEM) — then serves until killed. `GET /__stats` on
// the provider counts token requests; on the API, proofs verified and refusals.
import { dpopKey, startBoundProvider, startResourceServer } from './bound.mjs';

const as = await startBoundProvider();
const rs = await startResourceServer(as);
const key = await dpopKey('ES256');
console.log(
  JSON.stringify({
    tokenUrl: as.tokenUrl,
    tlsTokenUrl: as.tlsTokenUrl,
    issuer: as.issuer,
    api: rs.url,
    tlsApi: rs.tlsUrl,
    ca: as.certs.ca,
    client: as.certs.client,
    selfSigned: as.certs.selfSigned,
    dpop: { jwk: key.jwk, pem: key.pem },
  }),
);

// oidc-provider (tests/oidc/provider.mjs) in a process of its own, for the native client's tests:
// prints one JSON line — the token URL and each private_key_jwt client's id with its private key
// as a JWK and as a PKCS#8 PEM — then serves until killed. `GET /__stats` counts token requests.
import { clientKeys, startProvider } from './provider.mjs';

const keys = await clientKeys();
const as = await startProvider(keys);
const clients = Object.fromEntries(Object.entries(keys).map(([name, k]) => [`jwt-${name}`, { alg: k.alg, jwk: k.jwk, pem: k.pem }]));
console.log(JSON.stringify({ tokenUrl: as.tokenUrl, origin: as.origin, clients }));

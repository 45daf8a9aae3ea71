// Benchmark (not a test): what a DPoP proof costs per request, beside a bearer call, in Node —
// the package's `auth.authorize(method, url)` (the headers `auth.fetch` sends: a cache hit, and for
// DPoP one ES256 signature by the platform's WebCrypto plus the proof's JSON and base64url), beside
// oauth4webapi's DPoP handle (its `protectedResourceRequest` with a fetch that answers at once)
// and a proof hand-written with jose. No network in any column: the per-request overhead only.
// Prints a table; writes bench/results/dpop.json.
//   node bench/dpop.mjs            (after `npm run build`)
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as oauth from 'oauth4webapi';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { loadAverage, saveResult, versionOf } from './common.mjs';
import { SECRET, dpopKey, startBoundProvider } from '../tests/oidc/bound.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = 40;
const BATCH = 200;

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), p99: q(0.99) };
}

/** Per-call µs of `await fn()`, over batches (timer cost amortised). */
async function measure(fn) {
  for (let i = 0; i < 2_000; i++) await fn();
  const samples = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / BATCH / 1_000);
  }
  return summary(samples);
}

const loadBefore = loadAverage();
const as = await startBoundProvider();
const { AutopayAuth } = await import(join(root, 'pkg', 'node.mjs'));
const key = await dpopKey('ES256');
const common = { tokenUrl: as.tokenUrl, tokenRequest: 'form', audience: null, clientSecret: SECRET, logger: null };
const dpop = new AutopayAuth({ ...common, clientId: 'dpop-client', dpopKey: key.jwk });
await dpop.getToken();
const url = 'https://api.example.test/v1/items?page=2';

// a bearer client: the same package, the same cache hit, no proof (the emulator-free way: a
// DPoP-free client of the same provider is refused, so its token is seeded by a fetch stub)
const bearer = new AutopayAuth({
  ...common,
  clientId: 'bearer-bench',
  fetch: async () => new Response(JSON.stringify({ access_token: 'bench-token', token_type: 'Bearer', expires_in: 3600 }), { headers: { 'content-type': 'application/json' } }),
});
await bearer.getToken();

// oauth4webapi's DPoP handle over the same kind of key, its request answered at once
const pair = await generateKeyPair('ES256');
const client = { client_id: 'dpop-client' };
const handle = oauth.DPoP(client, pair);
const answered = async () => new Response('{}');
const o4w = () => oauth.protectedResourceRequest('token', 'GET', new URL(url), new Headers(), null, { DPoP: handle, [oauth.customFetch]: answered });

// a proof written by hand with jose (the floor: one signature, no cache, no nonce handling)
const jwk = await exportJWK(pair.publicKey);
const handProof = () => new SignJWT({ htm: 'GET', htu: url.split('?')[0], jti: crypto.randomUUID(), ath: 'x' }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).setIssuedAt().sign(pair.privateKey);

const rows = [
  ['autopay-auth: bearer headers (authorize)', () => bearer.authorize('GET', url)],
  ['autopay-auth: DPoP headers and proof (authorize)', () => dpop.authorize('GET', url)],
  [`oauth4webapi ${versionOf('oauth4webapi')}: DPoP protectedResourceRequest`, o4w],
  [`jose ${versionOf('jose')}: a DPoP proof by hand`, handProof],
];
const results = [];
for (const [name, fn] of rows) results.push({ name, ...(await measure(fn)) });
await as.close();

console.log('\nPer-request cost of presenting a token in Node (µs per call, no network; ES256 proofs)\n');
console.log('| client | median µs | p99 µs |');
console.log('|---|---:|---:|');
for (const r of results) console.log(`| ${r.name} | ${r.median.toFixed(1)} | ${r.p99.toFixed(1)} |`);
const extra = results[1].median - results[0].median;
console.log(`\nA DPoP proof adds ${extra.toFixed(1)} µs per request to a bearer call here.`);
saveResult('dpop', { loadBefore, loadAfter: loadAverage(), rounds: ROUNDS, batch: BATCH, results });

import { AutopayAuth, AutopayAuthError } from 'autopay-auth';

const clientId = process.env.AUTOPAY_CLIENT_ID;
const clientSecret = process.env.AUTOPAY_CLIENT_SECRET; // never logged, stored or returned
if (!clientId || !clientSecret) throw new Error('set AUTOPAY_CLIENT_ID and AUTOPAY_CLIENT_SECRET');

const auth = new AutopayAuth({ clientId, clientSecret }); // add `kv` to share tokens between processes

const token = await auth.getToken(); // from memory, KV, or one token request shared by all callers
const info = await auth.getTokenInfo(); // { accessToken, tokenType, scope, expiresAt, source }
const res = await auth.fetch('/customer_club/members?limit=10'); // the API's Response, with the token
console.log(token.length, info.source, res.status, auth.stats()); // stats: { mints, memoryHits, … }
// your own HTTP client got a 401 with `token`: drop it (compare-and-delete, fleet-wide), retry once
if ((await auth.refused(token)) === 'dropped') await auth.getToken();

try {
  await auth.getToken({ signal: AbortSignal.timeout(5_000) });
} catch (e) {
  if (!(e instanceof AutopayAuthError)) throw e; // the signal's own error, say
  console.error(e.code, e.status, e.error, e.description, e.retryAfter);
}

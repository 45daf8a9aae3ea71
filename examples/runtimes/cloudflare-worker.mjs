// A Cloudflare Worker in JavaScript on the npm package: it forwards your services' calls to the
// Autopay API with the token, for callers that present the key in the CALLER_KEY secret as
// `Authorization: Bearer <key>`. The token never leaves the Worker. One client per isolate; the
// AUTOPAY_TOKENS KV binding shares the token between isolates. (For one mint per fleet, and
// `/token` for services with their own HTTP client, deploy this repository's Worker instead.)
import { AutopayAuth } from 'autopay-auth';
import { waitUntil } from 'cloudflare:workers';

const digest = async (text) => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));

/** Whether `request` presents `key`, compared in constant time. */
async function callerHasKey(request, key) {
  const given = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
  if (!key || !given) return false;
  return crypto.subtle.timingSafeEqual(await digest(given), await digest(key));
}

let auth;
export default {
  async fetch(request, env) {
    if (!(await callerHasKey(request, env.CALLER_KEY))) return Response.json({ error: 'unauthorized' }, { status: 401 });
    auth ??= new AutopayAuth({
      clientId: env.AUTOPAY_CLIENT_ID,
      clientSecret: env.AUTOPAY_CLIENT_SECRET,
      tokenUrl: env.AUTOPAY_TOKEN_URL, // unset: Autopay's own endpoint
      apiBaseUrl: env.AUTOPAY_API_BASE, // unset: Autopay's own API
      kv: env.AUTOPAY_TOKENS,
      waitUntil, // a background refresh outlives the request that started it
    });
    const { pathname, search } = new URL(request.url);
    const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.arrayBuffer();
    const headers = { accept: request.headers.get('accept') ?? '*/*' };
    if (request.headers.has('content-type')) headers['content-type'] = request.headers.get('content-type');
    // under the API's base only; after a 401, one new token and one retry
    return auth.fetch(pathname + search, { method: request.method, headers, body });
  },
};

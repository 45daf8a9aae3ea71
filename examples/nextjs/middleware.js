// Middleware (edge runtime) in front of the Autopay API: /autopay/<path> goes to the API's
// <path> with the Autopay bearer token, for callers that present the key in AUTOPAY_PROXY_KEY as
// `Authorization: Bearer <key>` (unset: nobody gets through). `auth.fetch` keeps the call under
// the API's base (AUTOPAY_API_BASE, or Autopay's own API when unset), and after a 401 drops the
// token, gets a new one and retries once. The token never reaches the caller.
import { autopay } from './lib/autopay.js';

export const config = { matcher: '/autopay/:path*' };

const digest = async (text) => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));

/** Whether `request` presents the key, compared in constant time. */
async function callerHasKey(request) {
  const key = process.env.AUTOPAY_PROXY_KEY;
  const given = /^Bearer (.+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
  if (!key || !given) return false;
  const [a, b] = await Promise.all([digest(given), digest(key)]);
  return a.reduce((diff, byte, i) => diff | (byte ^ b[i]), 0) === 0;
}

export async function middleware(request) {
  if (!(await callerHasKey(request))) return Response.json({ error: 'unauthorized' }, { status: 401 });
  const { pathname, search } = request.nextUrl;
  const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.arrayBuffer();
  const headers = { accept: request.headers.get('accept') ?? '*/*' };
  const type = request.headers.get('content-type');
  if (type) headers['content-type'] = type;
  // the caller's own Authorization and cookies stay here
  return autopay().fetch(pathname.slice('/autopay'.length) + search, { method: request.method, headers, body });
}

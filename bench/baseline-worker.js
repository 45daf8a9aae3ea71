// The peer of the Worker benchmark: a hand-written JavaScript Worker doing autopay-auth's job as
// a skilled Cloudflare engineer would write it — token in isolate memory with expiry and
// single-flight, a KV record with absolute expiry, a timing-safe caller-key check, and a proxy
// with header rewrite and one retry after a 401. It mints by itself (no Durable Object), so it
// is the strongest plain-JS alternative, not a strawman. Its behaviour is tested in
// tests/worker/baseline.test.mjs.
//
// Bindings: CALLER_KEY, CLIENT_ID, CLIENT_SECRET, TOKEN_URL, API_BASE, KV AUTOPAY_TOKENS.

const KV_KEY = 'baseline-token';
const MARGIN_MS = 60_000; // never serve a token in its last minute
const DROP = new Set(['authorization', 'cookie', 'host', 'connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);
const encoder = new TextEncoder();

let memory = null; // { token, expiresAt }
let pending = null; // the one token request of this isolate
let callerDigest = null; // SHA-256 of the caller key, once

const usable = (t) => t !== null && Date.now() < t.expiresAt - MARGIN_MS;
const sha256 = (text) => crypto.subtle.digest('SHA-256', encoder.encode(text));

async function admitted(request, env) {
  const header = request.headers.get('authorization') ?? '';
  if (!header.startsWith('Bearer ')) return false;
  callerDigest ??= await sha256(env.CALLER_KEY);
  // digests of equal length, compared in constant time
  return crypto.subtle.timingSafeEqual(await sha256(header.slice(7)), callerDigest);
}

async function mint(env) {
  const sentAt = Date.now();
  const res = await fetch(env.TOKEN_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: env.CLIENT_ID, client_secret: env.CLIENT_SECRET, audience: 'https://api.autopay.io', grant_type: 'client_credentials' }),
    redirect: 'manual',
  });
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}`);
  const body = await res.json();
  const record = { token: body.access_token, expiresAt: sentAt + body.expires_in * 1000 };
  const ttl = Math.floor((record.expiresAt - Date.now()) / 1000);
  if (ttl >= 60) await env.AUTOPAY_TOKENS.put(KV_KEY, JSON.stringify(record), { expirationTtl: ttl });
  return record;
}

/** A usable token: memory, else one shared request that reads KV and mints when it must. */
function token(env, ctx, refused) {
  if (usable(memory) && memory.token !== refused) return Promise.resolve(memory.token);
  pending ??= (async () => {
    try {
      const stored = await env.AUTOPAY_TOKENS.get(KV_KEY, 'json');
      memory = usable(stored) && stored.token !== refused ? stored : await mint(env);
      return memory.token;
    } finally {
      pending = null;
    }
  })();
  return pending;
}

async function proxy(request, env, ctx, url) {
  const headers = new Headers();
  for (const [name, value] of request.headers) if (!DROP.has(name) && !name.startsWith('cf-')) headers.append(name, value);
  // bodies up to 1 MiB are kept for the one retry, larger declared ones stream once; a body of
  // unknown length is simply buffered (autopay-auth keeps only its first 1 MiB for a retry)
  const declared = request.headers.get('content-length');
  const replayable = request.body === null || declared === null || Number(declared) <= 1024 * 1024;
  const body = request.body === null ? null : replayable ? await request.arrayBuffer() : request.body;
  const target = env.API_BASE + url.pathname + url.search;
  let refused;
  for (let attempt = 0; ; attempt++) {
    const bearer = await token(env, ctx, refused);
    headers.set('authorization', `Bearer ${bearer}`);
    const res = await fetch(target, { method: request.method, headers, body, redirect: 'manual' });
    if (res.status !== 401 || attempt > 0 || !replayable) return res;
    if (memory?.token === bearer) memory = null;
    refused = bearer;
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === '/trivial') return new Response('ok');
    if (!(await admitted(request, env))) return new Response('unauthorized', { status: 401 });
    try {
      if (url.pathname === '/token') {
        const access_token = await token(env, ctx);
        return Response.json({ access_token, token_type: 'Bearer', expires_in: Math.floor((memory.expiresAt - Date.now()) / 1000) });
      }
      return await proxy(request, env, ctx, url);
    } catch {
      return Response.json({ error: 'token_unavailable' }, { status: 502 });
    }
  },
};

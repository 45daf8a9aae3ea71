// The Worker's front: a thin JS layer over the Rust Worker (its glue is handed in by the entry
// module: front.js, or front-split.js for a split deployment; made by scripts/build-worker.sh). Crossing into wasm through workers-rs costs tens of microseconds a
// request (request/response conversion, task scheduling, string copies), more than the token
// logic itself, so the front keeps two things only, and hands every decision to Rust:
//
// - the caller-key check: SHA-256 digests compared with crypto.subtle.timingSafeEqual, against
//   every key;
// - the lease, one per tenant: GET /token (GET /t/<tenant>/token with many tenants) is answered
//   from the tenant's `holder.lease` until its end — the refresh point the Rust core chose. Past it, the isolate's requests wait on one promise: one call into Rust
//   (`frontLease`), so one KV read and at most one Durable Object call per isolate, however
//   many requests are cold. A refusal (a 401 from the API) clears the lease from the Rust side.
//
// Bodiless (GET/HEAD) proxy calls: Rust plans the upstream request from the request's URL, method
// and header names and the lease's token (`frontRequest`, synchronous, one string: the URL joined
// under the base and checked, the header names not to forward, the headers that present the
// token), the front carries it out, fetches and returns the Response as it is; a 401
// goes back to Rust (`frontRetry`), which decides whether the token is dropped and the call
// made once more. A path Rust refuses, or a fetch that throws, is the Rust `fetch`'s to answer.
// GET /livez answers "ok" here. GET /status, the operator's page, is rendered here (status.js)
// from what Rust answers at /status.json for a health key — only when asked. Everything else —
// /healthz, other methods, calls with a body, misconfiguration, the cron — is the Rust `fetch` /
// `scheduled`.
import { renderStatus, statusHeaders } from './status.js';

// The generated entry's methods, called without building an entrypoint instance per request.
let rust;

/** The Rust Worker's own `fetch`: every route and answer the front does not make itself. */
const rustFetch = (request, env, ctx) => rust.fetch.call({ env, ctx }, request);
const encoder = new TextEncoder();

let settings; // from Rust, once per isolate: the caller keys' digests, the 401's body, the tenants
// per tenant (index as in settings.tenants): its one pending call into Rust, lease hits and joins
let pending = [];
let hits = [];
let joined = [];

function settingsOf(env) {
  if (settings === undefined) {
    settings = rust.frontSettings(env);
    if (settings !== null) {
      const n = settings.tenants.length;
      pending = new Array(n).fill(null);
      hits = new Array(n).fill(0);
      joined = new Array(n).fill(0);
      // many tenants: tenant name -> index
      settings.index = new Map(settings.tenants.map((t, i) => [t.name, i]));
    }
  }
  return settings;
}

/** The index of the caller's key, or -1: every key's digest compared, always. */
async function callerKey(request, s) {
  const header = request.headers.get('authorization');
  if (header === null || !header.startsWith('Bearer ')) return -1;
  const subtle = crypto.subtle;
  const digest = await subtle.digest('SHA-256', encoder.encode(header.slice(7).trim()));
  let found = -1;
  for (let i = 0; i < s.keys.length; i++) {
    if (subtle.timingSafeEqual(digest, s.keys[i]) && found < 0) found = i;
  }
  return found;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const json = (status, body, extra) => new Response(body, { status, headers: { ...JSON_HEADERS, ...extra } });

/** Tenant `t`'s lease, or (past its end) the one shared call into Rust: a lease, a failure, or null. */
function token(env, ctx, t) {
  const holder = settings.tenants[t].holder;
  const lease = holder.lease;
  if (lease !== null && Date.now() < lease.until) {
    hits[t]++;
    return lease;
  }
  if (pending[t] !== null) {
    joined[t]++;
    return pending[t];
  }
  const call = rust
    .frontLease(env, ctx, t)
    .then((got) => {
      if (got !== null && got.accessToken !== undefined) {
        const head = `{"access_token":${JSON.stringify(got.accessToken)},"token_type":${JSON.stringify(got.tokenType)},"scope":${JSON.stringify(got.scope)},"expires_in":`;
        got.head = head;
        if (got.until > Date.now()) holder.lease = got;
      }
      return got;
    })
    .catch(() => null)
    .finally(() => {
      pending[t] = null;
    });
  pending[t] = call;
  return call;
}

function failure(got) {
  return json(got.status, got.body, got.retryAfter === null ? undefined : { 'retry-after': String(got.retryAfter) });
}

/** The `/token` answer of tenant `t`: synchronous on a lease hit, else once the shared call lands. */
function tokenRoute(request, env, ctx, t) {
  const got = token(env, ctx, t);
  return got instanceof Promise ? got.then((g) => tokenAnswer(g, request, env, ctx)) : tokenAnswer(got, request, env, ctx);
}

function tokenAnswer(got, request, env, ctx) {
  if (got === null) return rustFetch(request, env, ctx);
  if (got.accessToken === undefined) return failure(got);
  const now = Date.now();
  const left = Math.max(0, Math.floor((got.expiresAt - now) / 1000));
  // callers may keep it until this Worker's own refresh point; no shared cache may keep it (one
  // headers object per lease and second, not one per answer)
  const keep = Math.max(0, Math.floor((got.until - now) / 1000));
  if (got.keep !== keep) {
    got.keep = keep;
    got.init = { headers: new Headers({ 'content-type': 'application/json', 'cache-control': `private, max-age=${keep}` }) };
  }
  return new Response(`${got.head}${left}}`, got.init);
}

/** A bodiless proxy call of the single tenant: planned by Rust in one synchronous call, carried
 * out here; a 401 is Rust's to decide. */
async function proxy(request, env, ctx) {
  let got = token(env, ctx, 0);
  if (got instanceof Promise) got = await got; // past the lease only
  if (got === null) return rustFetch(request, env, ctx);
  if (got.accessToken === undefined) return failure(got);
  let names = '';
  for (const name of request.headers.keys()) names = names === '' ? name : `${names} ${name}`;
  // the plan: the URL; the header names not to forward; a `name:value` line per header to set
  const plan = rust.frontRequest(`${request.method}\n${got.tokenType}\n${got.accessToken}\n${request.url}\n${names}`);
  if (plan == null) return rustFetch(request, env, ctx);
  const lines = plan.split('\n');
  const headers = new Headers(request.headers);
  if (lines[1] !== '') for (const name of lines[1].split(' ')) headers.delete(name);
  for (let i = 2; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    headers.set(lines[i].slice(0, colon), lines[i].slice(colon + 1));
  }
  let response;
  try {
    response = await fetch(lines[0], { method: request.method, headers, redirect: 'manual' });
  } catch {
    return rustFetch(request, env, ctx);
  }
  if (response.status !== 401) return response;
  const retried = await rust.frontRetry(env, ctx, request, got.accessToken);
  if (retried === null) return response; // the API's own 401
  await response.body?.cancel(); // retried: this answer is not needed
  return retried;
}

/** `GET /status`: the operator's page, made from Rust's `/status.json` (which admits health keys
 * only and answers anything else itself); `?format=json`, or an `Accept` that prefers JSON,
 * gets that report as it is. */
async function status(request, env, ctx) {
  const url = new URL(request.url);
  const accept = request.headers.get('accept') ?? '';
  const asJson = url.searchParams.get('format') === 'json' || (accept.includes('application/json') && !accept.includes('text/html'));
  url.pathname = '/status.json';
  url.search = '';
  const answer = await rustFetch(new Request(url, { headers: request.headers }), env, ctx);
  if (answer.status !== 200 || asJson) return answer;
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return new Response(renderStatus(await answer.json(), nonce), { headers: statusHeaders(nonce) });
}

/** `/t/<tenant>/token` → the tenant's index; anything else → -1 (the Rust `fetch` routes it). */
function tenantToken(path, s) {
  if (!path.startsWith('/t/') || !path.endsWith('/token')) return -1;
  const name = path.slice(3, -6);
  return s.index.get(name) ?? -1; // a name with a `/` is no tenant's
}

/** The Worker's handlers over the Rust Worker's generated entry class (`RustWorker`). */
export const serve = (RustWorker) => {
  rust = RustWorker.prototype;
  return handlers;
};

const handlers = {
  async fetch(request, env, ctx) {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') return rustFetch(request, env, ctx);
    const href = request.url;
    const start = href.indexOf('/', href.indexOf('//') + 2);
    const query = href.indexOf('?', start);
    const hash = href.indexOf('#', start);
    const end = Math.min(query < 0 ? href.length : query, hash < 0 ? href.length : hash);
    const path = href.slice(start, end);
    if (path === '/livez') return new Response('ok'); // liveness: no settings, no key
    if (path === '/status' && method === 'GET') return status(request, env, ctx);
    const s = settingsOf(env);
    if (s === null || path === '/healthz' || path.endsWith('/healthz')) {
      if (s !== null) {
        for (let t = 0; t < hits.length; t++) {
          if (hits[t] + joined[t] > 0) rust.frontCount(t, hits[t], joined[t]);
          hits[t] = joined[t] = 0;
        }
      }
      return rustFetch(request, env, ctx);
    }
    if (s.grants !== null) {
      // many tenants: the front serves a tenant's /token from its lease, for a key that may use
      // it; everything else (proxied calls, refusals, denials) is the Rust `fetch`'s
      const t = method === 'GET' ? tenantToken(path, s) : -1;
      if (t < 0) return rustFetch(request, env, ctx);
      const key = await callerKey(request, s);
      if (key < 0 || !s.grants[key].includes(t)) return rustFetch(request, env, ctx);
      return tokenRoute(request, env, ctx, t);
    }
    if ((await callerKey(request, s)) < 0) return json(401, s.unauthorized, { 'www-authenticate': 'Bearer' });
    if (method === 'GET' && path === '/token') return tokenRoute(request, env, ctx, 0);
    return proxy(request, env, ctx);
  },

  scheduled(event, env, ctx) {
    return rust.scheduled.call({ env, ctx }, event);
  },
};

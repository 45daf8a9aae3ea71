// The Worker's entry module: a thin JS front over the Rust Worker (build/index.js, made by
// scripts/build-worker.sh). Crossing into wasm through workers-rs costs tens of microseconds a
// request (request/response conversion, task scheduling, string copies), more than the token
// logic itself, so the front keeps two things only, and hands every decision to Rust:
//
// - the caller-key check: SHA-256 digests compared with crypto.subtle.timingSafeEqual, against
//   every key;
// - the lease: GET /token is answered from `holder.lease` until its end — the refresh point the
//   Rust core chose. Past it, the isolate's requests wait on one promise: one call into Rust
//   (`frontLease`), so one KV read and at most one Durable Object call per isolate, however
//   many requests are cold. A refusal (a 401 from the API) clears the lease from the Rust side.
//
// Bodiless (GET/HEAD) proxy calls: Rust prepares the upstream request from the platform's
// request and the lease's token (`frontRequest`, synchronous: the URL joined under the base and
// checked, the headers filtered), the front fetches it and returns the Response as it is; a 401
// goes back to Rust (`frontRetry`), which decides whether the token is dropped and the call
// made once more. A path Rust refuses, or a fetch that throws, is the Rust `fetch`'s to answer.
// GET /livez answers "ok" here. Everything else — /healthz, other
// methods, calls with a body, misconfiguration, the cron — is the Rust `fetch` / `scheduled`.
import RustWorker, { TokenMinter } from '../../build/index.js';

export { TokenMinter };

// The generated entry's methods, called without building an entrypoint instance per request.
const rust = RustWorker.prototype;
const encoder = new TextEncoder();

let settings; // from Rust, once per isolate: the caller keys' digests, the 401's body
const holder = { lease: null }; // { accessToken, tokenType, scope, expiresAt, until, head }; Rust clears it on a refusal
let pending = null; // this isolate's one call into Rust for a token
let hits = 0; // answers from the lease, reported to /healthz
let joined = 0; // requests that waited on `pending` instead of calling Rust

function settingsOf(env) {
  if (settings === undefined) settings = rust.frontSettings(env, holder);
  return settings;
}

async function admitted(request, s) {
  const header = request.headers.get('authorization');
  if (header === null || !header.startsWith('Bearer ')) return false;
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(header.slice(7).trim()));
  let ok = false;
  for (const key of s.keys) ok = crypto.subtle.timingSafeEqual(digest, key) || ok; // every key, always
  return ok;
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const json = (status, body, extra) => new Response(body, { status, headers: { ...JSON_HEADERS, ...extra } });

/** The lease, or (past its end) the one shared call into Rust: a lease, a failure, or null. */
function token(env, ctx) {
  const lease = holder.lease;
  if (lease !== null && Date.now() < lease.until) {
    hits++;
    return lease;
  }
  if (pending !== null) {
    joined++;
    return pending;
  }
  pending = rust
    .frontLease(env, ctx)
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
      pending = null;
    });
  return pending;
}

function failure(got) {
  return json(got.status, got.body, got.retryAfter === null ? undefined : { 'retry-after': String(got.retryAfter) });
}

/** The `/token` answer: synchronous on a lease hit, else once the shared call lands. */
function tokenRoute(request, env, ctx) {
  const got = token(env, ctx);
  return got instanceof Promise ? got.then((g) => tokenAnswer(g, request, env, ctx)) : tokenAnswer(got, request, env, ctx);
}

function tokenAnswer(got, request, env, ctx) {
  if (got === null) return rust.fetch.call({ env, ctx }, request);
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

/** A bodiless proxy call: what Rust prepares, fetched here; a 401 is Rust's to decide. */
async function proxy(request, env, ctx) {
  const rustFetch = () => rust.fetch.call({ env, ctx }, request);
  const got = await token(env, ctx);
  if (got === null) return rustFetch();
  if (got.accessToken === undefined) return failure(got);
  const call = rust.frontRequest(request, got.tokenType, got.accessToken);
  if (call === null) return rustFetch();
  let response;
  try {
    response = await fetch(call.url, call.init);
  } catch {
    return rustFetch();
  }
  if (response.status !== 401) return response;
  const retried = await rust.frontRetry(env, ctx, request, got.accessToken);
  if (retried === null) return response; // the API's own 401
  await response.body?.cancel(); // retried: this answer is not needed
  return retried;
}

export default {
  async fetch(request, env, ctx) {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') return rust.fetch.call({ env, ctx }, request);
    const href = request.url;
    const start = href.indexOf('/', href.indexOf('//') + 2);
    const query = href.indexOf('?', start);
    const hash = href.indexOf('#', start);
    const end = Math.min(query < 0 ? href.length : query, hash < 0 ? href.length : hash);
    const path = href.slice(start, end);
    if (path === '/livez') return new Response('ok'); // liveness: no settings, no key
    const s = settingsOf(env);
    if (s === null || path === '/healthz') {
      rust.frontCount(hits, joined);
      hits = joined = 0;
      return rust.fetch.call({ env, ctx }, request);
    }
    if (!(await admitted(request, s))) return json(401, s.unauthorized, { 'www-authenticate': 'Bearer' });
    if (method === 'GET' && path === '/token') return tokenRoute(request, env, ctx);
    return proxy(request, env, ctx);
  },

  scheduled(event, env, ctx) {
    return rust.scheduled.call({ env, ctx }, event);
  },
};

// The Worker's entry module: a thin JS front over the Rust Worker (build/index.js, made by
// scripts/build-worker.sh). Crossing into wasm through workers-rs costs tens of microseconds a
// request (request/response conversion, task scheduling, string copies), more than the token
// logic itself, so the two hot paths are answered here, from a lease the Rust side publishes:
//
// - GET /token, and bodiless (GET/HEAD) proxy calls: after a constant-time caller-key check
//   (SHA-256 digests compared with crypto.subtle.timingSafeEqual, against every key), the token
//   comes from `lease` until its end — the refresh point the Rust core chose. Past it, the
//   isolate's requests wait on one promise: one call into Rust (`frontLease`), so one KV read
//   and at most one Durable Object call per isolate, however many requests are cold. The
//   upstream Response is returned as it is.
// - A 401 from the API goes to the core (`frontRefused`), which decides whether the token is
//   dropped and the call retried once.
//
// GET /livez answers "ok" here. Everything else — /healthz, other methods, calls with a body,
// misconfiguration, the cron — is the Rust `fetch` / `scheduled`. No token policy lives here:
// what may be served and until when, refreshes, refusals and error answers all come from the
// Rust core.
import RustWorker, { TokenMinter } from '../../build/index.js';

export { TokenMinter };

// The generated entry's methods, called without building an entrypoint instance per request.
const rust = RustWorker.prototype;
const encoder = new TextEncoder();

let settings; // from Rust, once per isolate: keys, apiBase, unforwarded headers, error bodies
let lease = null; // { accessToken, tokenType, scope, expiresAt, until, head }
let pending = null; // this isolate's one call into Rust for a token
let hits = 0; // answers from the lease, reported to /healthz
let joined = 0; // requests that waited on `pending` instead of calling Rust

function settingsOf(env) {
  if (settings === undefined) {
    const s = rust.frontSettings(env);
    if (s === null) return (settings = null);
    const escaped = s.unforwardedPrefixes.map((p) => p.replace(/[^a-z0-9]/g, '\\$&'));
    // a path Rust refuses (an encoded separator, also double-encoded, or a `;` parameter) goes to Rust
    const smuggling = new RegExp(`%(?:25)*(?:${s.encodedSeparators.join('|')})|;`, 'i');
    settings = { ...s, unforwarded: new Set(s.unforwarded), prefixes: new RegExp(`^(?:${escaped.join('|')})`), smuggling };
  }
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
const OK = { headers: new Headers(JSON_HEADERS) };
const json = (status, body, extra) => new Response(body, { status, headers: { ...JSON_HEADERS, ...extra } });

/** The lease, or (past its end) the one shared call into Rust: a lease, a failure, or null. */
function token(env, ctx) {
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
        if (got.until > Date.now()) lease = got;
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
  const left = Math.max(0, Math.floor((got.expiresAt - Date.now()) / 1000));
  return new Response(`${got.head}${left}}`, OK);
}

/** `pathAndQuery`: from the runtime's serialised WHATWG URL, so no dot segments remain in it;
 * one starting `//` (a host, to a URL parser) is Rust's to refuse. */
async function proxy(request, env, ctx, s, pathAndQuery) {
  const query = pathAndQuery.indexOf('?');
  const path = query < 0 ? pathAndQuery : pathAndQuery.slice(0, query);
  if (pathAndQuery.startsWith('//') || s.smuggling.test(path)) return rust.fetch.call({ env, ctx }, request);
  const target = s.apiBase + pathAndQuery;
  const headers = new Headers();
  for (const [name, value] of request.headers) {
    if (!s.unforwarded.has(name) && !s.prefixes.test(name)) headers.append(name, value);
  }
  const init = { method: request.method, headers, redirect: 'manual' };
  for (let attempt = 0; ; attempt++) {
    const got = await token(env, ctx);
    if (got === null) return rust.fetch.call({ env, ctx }, request);
    if (got.accessToken === undefined) return failure(got);
    headers.set('authorization', `Bearer ${got.accessToken}`);
    let response;
    try {
      response = await fetch(target, init);
    } catch {
      return json(502, s.unreachable);
    }
    if (response.status !== 401 || attempt > 0) return response;
    if (lease?.accessToken === got.accessToken) lease = null;
    if (!(await rust.frontRefused(env, got.accessToken))) return response; // the API's own 401
    await response.body?.cancel(); // retried: this answer is not needed
  }
}

export default {
  async fetch(request, env, ctx) {
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') return rust.fetch.call({ env, ctx }, request);
    const href = request.url;
    const start = href.indexOf('/', href.indexOf('//') + 2);
    const hash = href.indexOf('#', start); // (never sent; dropped)
    const pathAndQuery = hash < 0 ? href.slice(start) : href.slice(start, hash);
    const query = pathAndQuery.indexOf('?');
    const path = query < 0 ? pathAndQuery : pathAndQuery.slice(0, query);
    if (path === '/livez') return new Response('ok'); // liveness: no settings, no key
    const s = settingsOf(env);
    if (s === null || path === '/healthz') {
      rust.frontCount(hits, joined);
      hits = joined = 0;
      return rust.fetch.call({ env, ctx }, request);
    }
    if (!(await admitted(request, s))) return json(401, s.unauthorized, { 'www-authenticate': 'Bearer' });
    if (method === 'GET' && path === '/token') return tokenRoute(request, env, ctx);
    return proxy(request, env, ctx, s, pathAndQuery);
  },

  scheduled(event, env, ctx) {
    return rust.scheduled.call({ env, ctx }, event);
  },
};

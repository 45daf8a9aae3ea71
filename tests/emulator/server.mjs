#!/usr/bin/env node
// An Autopay emulator: a real HTTP server on 127.0.0.1 that follows the token contract in
// shared/autopay-oauth.md strictly, serves a small protected sample API, counts what it mints,
// and injects faults on request. Used by the demo and every test.
//
//   node tests/emulator/server.mjs [--port 8788] [--client-id ID] [--client-secret S] [--expires-in 86400]
//
// The sample API (every other path) echoes method, path, query, body and cookie; a path ending
// in /status/NNN answers with that status.
//
// Control endpoints (loopback only, for tests): GET /__emulator/stats, POST /__emulator/reset,
// POST /__emulator/config {expiresIn}, POST /__emulator/faults [{status, body, headers, delayMs,
// raw, endless}] (queued for the next token requests), POST /__emulator/revoke (every issued token dies).
// POST /__emulator/config {refuseAll} makes the API refuse every token; {quota: {kind, limit,
// windowSec}} grants at most `limit` tokens per fixed window, declares the quota in every token
// answer as a metered vendor does — kind `auth0` (Auth0-Client-Quota-Limit), `okta`
// (X-Rate-Limit-*) or `ietf` (RateLimit / RateLimit-Policy) — and answers 429 past it
// ({quota: null} turns it off). API calls: a path ending
// in /status/NNN answers NNN; `?delayMs=N` answers after N ms (≤ 5 s); `?redirect=URL[&status=N]`
// answers a redirect there; answers echo the request (headers without `authorization`).
import { createServer } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';

export const AUDIENCE = 'https://api.autopay.io';
export const GRANT_TYPE = 'client_credentials';
const MAX_BODY = 4 * 1024 * 1024;

function sameText(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startEmulator({
  port = 0,
  clientId = 'demo-client',
  clientSecret = 'demo-secret',
  expiresIn = 86400,
  scope = 'customer_club',
  log = false,
  // Also accept what RFC 6749 clients send (form bodies, client_secret_basic, no audience), for
  // benchmarking the generic OAuth libraries. Off by default: the strict contract is the rule.
  compat = false,
} = {}) {
  const everIssued = new Set();
  const state = {
    expiresIn,
    refuseAll: false, // the API refuses every token (a misconfigured account)
    tokens: new Map(), // token -> expiresAt (ms)
    faults: [],
    quota: null, // { kind, limit, windowSec }: a metered vendor (off: the contract has none)
    quotaWindow: { start: 0, used: 0 },
    quotaSince: 0,
    stats: { minted: 0, tokenRequests: 0, apiRequests: 0, apiUnauthorized: 0, overQuota: 0 },
    // performance.now() when the last minted token's request arrived and was answered (for
    // benchmarks that split a first token into before / at / after Autopay)
    lastMint: null,
  };

  const cors = {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-expose-headers': 'retry-after, auth0-client-quota-limit, x-rate-limit-limit, x-rate-limit-remaining, x-rate-limit-reset, ratelimit, ratelimit-policy',
    'access-control-max-age': '600',
  };

  function send(res, status, body, headers = {}) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...cors, ...headers });
    res.end(text);
  }

  const oauthError = (res, status, error, description, headers) =>
    send(res, status, { error, error_description: description }, headers);

  async function readBody(req) {
    const chunks = [];
    let size = 0;
    for await (const c of req) {
      size += c.length;
      if (size > MAX_BODY) throw new Error('too large');
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** The quota's count for one more token request: whether it is past the quota, and the
   * headers that declare what is left. */
  function metered() {
    const { kind, limit, windowSec } = state.quota;
    const now = Date.now();
    const w = windowSec * 1000;
    // fixed windows from when the quota was set (a test never straddles a window's end)
    const start = state.quotaSince + Math.floor((now - state.quotaSince) / w) * w;
    if (state.quotaWindow.start !== start) state.quotaWindow = { start, used: 0 };
    const used = ++state.quotaWindow.used;
    const left = Math.max(0, limit - used);
    const t = Math.ceil((start + w - now) / 1000);
    const bucket = windowSec >= 86_400 ? 'per_day' : 'per_hour';
    const headers = {
      auth0: { 'auth0-client-quota-limit': `b=${bucket};q=${limit};r=${left};t=${t}` },
      okta: { 'x-rate-limit-limit': String(limit), 'x-rate-limit-remaining': String(left), 'x-rate-limit-reset': String(Math.ceil((start + w) / 1000)) },
      ietf: { 'ratelimit-policy': `"tokens";q=${limit};w=${windowSec}`, ratelimit: `"tokens";r=${left};t=${t}` },
    }[kind];
    return { over: used > limit, headers };
  }

  async function token(req, res) {
    const arrived = performance.now();
    state.stats.tokenRequests++;
    const quota = state.quota ? metered() : { over: false, headers: {} };
    if (quota.over) {
      state.stats.overQuota++;
      return oauthError(res, 429, 'too_many_requests', 'Quota exceeded', quota.headers);
    }
    const fault = state.faults.shift();
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault?.endless) {
      // a 200 whose body never ends (64 KiB every 10 ms) until the client stops reading: only a
      // reader that streams and stops at its cap answers; one that buffers waits for its timeout.
      // Bounded: 60 s or 256 MiB at most.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"access_token":"');
      const chunk = 'a'.repeat(64 * 1024);
      const until = Date.now() + 60_000;
      let sent = 0;
      const timer = setInterval(() => {
        if (res.destroyed || Date.now() > until || sent > 256 * 1024 * 1024) {
          clearInterval(timer);
          return res.destroy();
        }
        res.write(chunk);
        sent += chunk.length;
      }, 10);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (fault && fault.status !== undefined) {
      const body = fault.raw !== undefined ? fault.raw : fault.body ?? '';
      return send(res, fault.status, body, fault.headers);
    }
    if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'Method must be POST', { allow: 'POST' });
    const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
    const form = compat && type === 'application/x-www-form-urlencoded';
    if (type !== 'application/json' && !form) return oauthError(res, 400, 'invalid_request', 'Content-Type must be application/json');
    let body;
    try {
      const text = await readBody(req);
      body = form ? Object.fromEntries(new URLSearchParams(text)) : JSON.parse(text);
    } catch {
      return oauthError(res, 400, 'invalid_request', 'Body must be a JSON object');
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return oauthError(res, 400, 'invalid_request', 'Body must be a JSON object');
    }
    if (compat) {
      // RFC 6749 clients: credentials in `Authorization: Basic` (client_secret_basic) instead
      // of the body, and the audience optional (it has one value only)
      const basic = /^Basic (\S+)$/i.exec(req.headers.authorization || '');
      if (basic) {
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        body.client_id = decodeURIComponent(decoded.slice(0, colon));
        body.client_secret = decodeURIComponent(decoded.slice(colon + 1));
      }
      body.audience ??= AUDIENCE;
    }
    for (const f of ['client_id', 'client_secret', 'audience', 'grant_type']) {
      if (typeof body[f] !== 'string' || body[f] === '') return oauthError(res, 400, 'invalid_request', `Missing or invalid ${f}`);
    }
    if (body.grant_type !== GRANT_TYPE) return oauthError(res, 400, 'unsupported_grant_type', 'grant_type must be client_credentials');
    if (body.audience !== AUDIENCE) return oauthError(res, 400, 'invalid_request', 'Service not found: ' + body.audience);
    // Compare both, always, so timing does not tell which one was wrong.
    const idOk = sameText(body.client_id, clientId);
    const secretOk = sameText(body.client_secret, clientSecret);
    if (!(idOk && secretOk)) return oauthError(res, 401, 'access_denied', 'Unauthorized');
    const accessToken = randomBytes(32).toString('base64url');
    state.tokens.set(accessToken, Date.now() + state.expiresIn * 1000);
    everIssued.add(accessToken);
    state.stats.minted++;
    if (log) console.log(`[emulator] minted token #${state.stats.minted} (expires_in ${state.expiresIn})`);
    state.lastMint = { arrived, answered: performance.now() };
    return send(res, 200, { access_token: accessToken, scope, expires_in: state.expiresIn, token_type: 'Bearer' }, quota.headers);
  }

  async function api(req, res, url) {
    state.stats.apiRequests++;
    const auth = req.headers.authorization || '';
    const m = /^Bearer (\S+)$/.exec(auth);
    const expiresAt = m ? state.tokens.get(m[1]) : undefined;
    if (state.refuseAll || expiresAt === undefined || expiresAt <= Date.now()) {
      state.stats.apiUnauthorized++;
      return send(res, 401, { error: 'invalid_token', error_description: 'Unknown or expired access token' },
        { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    let body;
    try {
      body = await readBody(req);
    } catch {
      return send(res, 413, { error: 'too_large' });
    }
    const redirect = url.searchParams.get('redirect');
    if (redirect) return send(res, Number(url.searchParams.get('status')) || 302, '', { location: redirect });
    const delayMs = Math.min(Number(url.searchParams.get('delayMs')) || 0, 5_000);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const asked = /^\/(?:.*\/)?status\/(\d{3})$/.exec(url.pathname);
    return send(res, asked ? Number(asked[1]) : 200, {
      ok: true,
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      cookie: req.headers.cookie ?? null,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'authorization')),
    });
  }

  async function control(req, res, url) {
    const body = req.method === 'POST' ? await readBody(req) : '';
    switch (url.pathname) {
      case '/__emulator/stats':
        return send(res, 200, { ...state.stats, liveTokens: state.tokens.size });
      case '/__emulator/reset':
        state.tokens.clear();
        state.faults = [];
        state.expiresIn = expiresIn;
        state.refuseAll = false;
        state.quota = null;
        state.quotaWindow = { start: 0, used: 0 };
        for (const k of Object.keys(state.stats)) state.stats[k] = 0;
        return send(res, 200, { ok: true });
      case '/__emulator/config': {
        const c = JSON.parse(body || '{}');
        if (c.expiresIn !== undefined) state.expiresIn = c.expiresIn;
        if (c.refuseAll !== undefined) state.refuseAll = Boolean(c.refuseAll);
        if (c.quota !== undefined) {
          state.quota = c.quota;
          state.quotaSince = Date.now();
          state.quotaWindow = { start: 0, used: 0 };
        }
        return send(res, 200, { ok: true, expiresIn: state.expiresIn, refuseAll: state.refuseAll, quota: state.quota });
      }
      case '/__emulator/faults':
        state.faults.push(...JSON.parse(body || '[]'));
        return send(res, 200, { ok: true, queued: state.faults.length });
      case '/__emulator/revoke':
        state.tokens.clear();
        return send(res, 200, { ok: true });
      default:
        return send(res, 404, { error: 'not_found' });
    }
  }

  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, cors);
        return res.end();
      }
      if (url.pathname === '/oauth/token') return await token(req, res);
      if (url.pathname.startsWith('/__emulator/')) return await control(req, res, url);
      return await api(req, res, url);
    } catch (e) {
      if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: 'emulator failure' });
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;

  const post = (path, value) =>
    fetch(origin + path, { method: 'POST', body: JSON.stringify(value ?? {}) }).then((r) => r.json());
  return {
    origin,
    tokenUrl: `${origin}/oauth/token`,
    clientId,
    clientSecret,
    state,
    stats: () => ({ ...state.stats }),
    /** Every token this emulator ever issued (resets and revocations included), for checks that
     * an answer holds none of them. */
    issued: () => [...everIssued],
    /** Queue faults for the next token requests (in-process, no HTTP needed). */
    fault: (...faults) => state.faults.push(...faults),
    setExpiresIn: (s) => (state.expiresIn = s),
    revoke: () => state.tokens.clear(),
    refuseAll: (on = true) => (state.refuseAll = on),
    post,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const emu = await startEmulator({
    port: Number(arg('port', process.env.EMULATOR_PORT ?? 8788)),
    clientId: arg('client-id', process.env.AUTOPAY_CLIENT_ID ?? 'demo-client'),
    clientSecret: arg('client-secret', process.env.AUTOPAY_CLIENT_SECRET ?? 'demo-secret'),
    expiresIn: Number(arg('expires-in', 86400)),
    compat: process.argv.includes('--compat'),
    log: true,
  });
  console.log(`Autopay emulator on ${emu.origin} (token endpoint ${emu.tokenUrl})`);
  const stop = () => emu.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

// Types of the `autopay-auth` package (the same for every runtime entry).

/** Any store with the Cloudflare Workers `KVNamespace` shape (a Workers KV binding works as is). */
export interface KVNamespaceLike {
  get(key: string): Promise<string | null>;
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  /**
   * Optional: store `value` only if `key` is absent, atomically, for `ttlMs`; resolve `true` if
   * stored. A store with this lets processes sharing it mint once between them.
   */
  putIfAbsent?(key: string, value: string, options: { ttlMs: number }): Promise<boolean>;
  /**
   * Optional, and required with `putIfAbsent`: delete `key` only while its value is exactly
   * `expected`, atomically; resolve `true` if deleted. The minting lock is released through it
   * (its value names its owner, so a holder never frees another's lock), and a refused
   * token's record is deleted through it (a token saved since is kept).
   */
  deleteIf?(key: string, expected: string): Promise<boolean>;
  /**
   * Optional: the shortest `expirationTtl` (whole seconds, 1–86400) that `put` accepts.
   * Without it the store is taken for Workers KV (60 s), and a token with less than a minute
   * left stays in each instance's memory. The Redis, Upstash, Deno KV and DynamoDB adapters
   * say 1, so short-lived tokens are shared through them too.
   */
  readonly minExpirationTtl?: number;
}

/** The OpenTelemetry API objects `telemetry` takes (the shapes used, so no dependency on it). */
export interface TelemetryOptions {
  meter?: {
    createCounter(name: string, options?: object): unknown;
    createHistogram(name: string, options?: object): unknown;
    createObservableCounter(name: string, options?: object): unknown;
    createObservableGauge(name: string, options?: object): unknown;
    addBatchObservableCallback(callback: (result: any) => void, observables: any[]): unknown;
  };
  tracer?: { startSpan(name: string, options?: object): unknown };
}

/**
 * Where the package logs, one line per event. `console` and winston take `(message, fields)` as
 * they are; pino and bunyan take `(fields, message)`: pass `loggerArgs: 'fields-first'` with them.
 */
export interface Logger {
  debug(message: string, fields?: AutopayAuthEvent): unknown;
  info(message: string, fields?: AutopayAuthEvent): unknown;
  warn(message: string, fields?: AutopayAuthEvent): unknown;
  error(message: string, fields?: AutopayAuthEvent): unknown;
}

/** What happened; never carries a token, a secret or a store's value. */
export type AutopayAuthEventType = 'mint' | 'refresh' | 'store_error' | 'token_error' | 'cooldown' | 'budget_exhausted' | 'store_outage' | 'quota';

export interface AutopayAuthEvent {
  type: AutopayAuthEventType;
  /** When, ms since the Unix epoch. */
  at: number;
  /** `mint`: tokens minted so far. */
  mints?: number;
  /** `mint`: the granted lifetime in seconds. */
  lifetimeSecs?: number;
  /** `token_error`, `cooldown`, `budget_exhausted`: the error code. */
  code?: AutopayAuthErrorCode;
  /** `token_error`, `cooldown`: HTTP status of the token endpoint's answer. */
  status?: number;
  /** `quota`: token requests the declared quota has left. */
  remaining?: number;
  /** `quota`: the declared quota's size, when the endpoint said. */
  limit?: number;
  /** `cooldown`, `budget_exhausted`: seconds until a token request may be made again; `quota`: until the quota resets. */
  retryAfter?: number;
  /** `store_error`: the failing operation and the error's name (never its text); `store_outage`: `mint` (minted alone) or `fail`; `token_error`: `retrying` when another attempt of the same request follows; `budget_exhausted`: the limit that refused (`budget`, `per_hour`, `per_day`, `per_month`, or a declared quota's name); `quota`: the declared quota's name (`auth0-client:per_hour`, `okta`, `ratelimit:default`, …). */
  detail?: string;
  /** The client's `label`, when it has one. */
  label?: string;
}

/** How the client proves who it is at the token endpoint. */
export type ClientAuth = 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt';

/** The JWS algorithms `private_key_jwt` signs with (through the platform's WebCrypto). */
export type SigningAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/**
 * A private JSON Web Key (RFC 7517): RSA, EC (P-256, P-384, P-521) or OKP (Ed25519), with its
 * private member `d` — what `exportJWK` of `jose` and `crypto.subtle.exportKey('jwk', …)` give.
 */
export interface PrivateJwk {
  kty?: string;
  d?: string;
  kid?: string;
  alg?: string;
  crv?: string;
  [member: string]: unknown;
}

/** The client secret: Autopay's way (`client_secret_post`), or HTTP Basic. */
export interface SecretCredentials {
  /** Client secret. Never logged, stored or returned. */
  clientSecret: string;
  /**
   * How the client authenticates: `'client_secret_post'` (default: id and secret in the body) or
   * `'client_secret_basic'` (HTTP Basic, the id and secret form-encoded first, RFC 6749 §2.3.1).
   */
  clientAuth?: 'client_secret_post' | 'client_secret_basic';
  privateKey?: never;
  privateKeyAlg?: never;
  privateKeyId?: never;
  certificate?: never;
  x5c?: never;
}

/** A private key instead of a secret: a fresh signed assertion per token request (RFC 7523). */
export interface KeyCredentials {
  clientAuth: 'private_key_jwt';
  /** A private JWK, or a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). A secret, kept like a client secret. */
  privateKey: PrivateJwk | string;
  /** The key's algorithm; default the JWK's `alg`, else ES256 (P-256), ES384, ES512, RS256 (RSA) or EdDSA (Ed25519). */
  privateKeyAlg?: SigningAlg;
  /** The `kid` put in the assertion's header; default the JWK's `kid`. */
  privateKeyId?: string;
  /**
   * The key's X.509 certificate (PEM, leaf first, then any chain): each assertion's header names
   * it by `x5t#S256` (its SHA-256 thumbprint) — Microsoft Entra ID's certificate credentials.
   */
  certificate?: string;
  /** With `certificate`: also send the chain in the header (`x5c`), for Entra's subject name and issuer authentication. Default false. */
  x5c?: boolean;
  clientSecret?: never;
}

/** Options of `new AutopayAuth(...)`: the common ones and one way to authenticate. Unknown keys are refused with `invalid_config`. */
export type AutopayAuthOptions = AutopayAuthCommonOptions & (SecretCredentials | KeyCredentials);

/** The options every client takes, whatever its credentials. */
export interface AutopayAuthCommonOptions {
  /** Client ID. */
  clientId: string;
  /** The token request's body: `'json'` (default: Autopay's) or `'form'` (`application/x-www-form-urlencoded`, RFC 6749 — every standard server). */
  tokenRequest?: 'json' | 'form';
  /** Shared token cache across instances (optional). */
  kv?: KVNamespaceLike | null;
  /** Token endpoint. Default `https://api-auth.autopay.io/oauth/token`, for Autopay's own request only: any other vendor's configuration (another `audience` or none, `tokenRequest: 'form'`, another `clientAuth`, a `scope` or `resource`) must set it, or the constructor throws `invalid_config`. */
  tokenUrl?: string;
  /** The `audience` parameter. Default `https://api.autopay.io`; `null` sends none. */
  audience?: string | null;
  /** The `scope` parameter: scope tokens separated by spaces. Default none. */
  scope?: string;
  /** Resource indicators (RFC 8707): one `resource` parameter each. Default none. */
  resource?: string | string[];
  /** The client's name in events, log lines and OpenTelemetry (`autopay_auth.client`), where a process holds many credential sets: 1 to 64 of `A-Za-z0-9._:-`. Not part of the cache key; never put a secret in it. */
  label?: string;
  /** Further token-request parameters, sent after the standard ones in this order (a vendor's own: `{ organization: 'org_1' }`). The names the client writes itself (`client_id`, `client_secret`, `client_assertion`, `client_assertion_type`, `grant_type`, `audience`, `scope`, `resource`) are `invalid_config`. Part of the cache key. Not for Autopay's endpoint. */
  tokenParams?: Record<string, string>;
  /** Further headers on every token request (`{ 'x-tenant': 'acme' }`). `Host`, `Authorization`, `Content-Type`, `Content-Length`, `Cookie` and hop-by-hop headers are `invalid_config`. Part of the cache key. */
  tokenHeaders?: Record<string, string>;
  /**
   * A DPoP key (RFC 9449): a private JWK or PKCS#8 PEM, kept like a client secret. Every token
   * request and every `auth.fetch` call then carries a fresh proof signed with it, and the tokens
   * minted are bound to it (`token_type: 'DPoP'`, sent as `Authorization: DPoP …`). Give every
   * instance of a fleet the same key, so the one token the fleet mints serves all of them; it is
   * part of the cache key and never stored. ES256 (P-256) is what every DPoP server takes.
   */
  dpopKey?: PrivateJwk | string;
  /** The DPoP key's algorithm; default the JWK's `alg`, else ES256 (P-256), ES384, ES512, RS256 (RSA) or EdDSA (Ed25519). */
  dpopKeyAlg?: SigningAlg;
  /** Seconds a token lives when the server's answer has no `expires_in` (default: such an answer is `invalid_response`). */
  defaultExpiresInSec?: number;
  /** Base URL for `auth.fetch`. Default `https://api.autopay.io` when `tokenUrl` is Autopay's; with any other `tokenUrl`, `auth.fetch` needs it. */
  apiBaseUrl?: string;
  /** Fetch implementation. Default `globalThis.fetch`. */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  /** Share of the lifetime after which a token is stale and refreshed in the background. Default 0.75. */
  refreshRatio?: number;
  /** Seconds before expiry in which a token is never served. Default 300. */
  expiryMarginSec?: number;
  /** Cap on that margin as a share of the lifetime, so short tokens stay usable. Default 0.1. */
  expiryMarginRatio?: number;
  /** Largest random shift of the refresh point, in seconds (also capped at 5 % of the lifetime). Default 300. */
  refreshJitterSec?: number;
  /** Timeout of one token request, in milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Bound of one KV call (get, put, delete, lock), in milliseconds; a slower one is a counted store error. Default 3000. */
  storeTimeoutMs?: number;
  /**
   * What a caller without a token does when the shared store (`kv`) cannot be reached, so the
   * fleet cannot agree on who mints. `'mint'` (default): mint alone, at most once per token
   * lifetime per instance and never past the mint budget. `'fail'`: keep trying the store for
   * `storeWaitMs`, then fail with `store_unavailable`; never mint without the store.
   */
  storeOutage?: 'mint' | 'fail';
  /** With `storeOutage: 'fail'`: how long to keep trying an unreachable store, in milliseconds. Default 5000. */
  storeWaitMs?: number;
  /**
   * The most token requests the whole fleet (every instance on the same `kv`) makes per hour,
   * per day (both sliding) and per calendar month in UTC — for a vendor that meters tokens.
   * Beside it, quotas the token endpoint declares (Auth0's, Okta's, the IETF `RateLimit`
   * fields) are kept fleet-wide on their own. A caller without a usable token when one is
   * spent gets `mint_budget_exhausted` with `retryAfter`. Also `'3/hour, 50/day, 1000/month'`.
   */
  mintBudget?: MintBudget | string;
  /** Where log lines go (mint: info; refresh: debug; store and token errors, cooldowns: warn; budget: error). Default `console`; `null` for silence. */
  logger?: Logger | null;
  /**
   * How the logger takes its arguments: `'message-first'` (default), `(message, fields)` as
   * console and winston do; `'fields-first'`, `(fields, message)` as pino and bunyan do (pino
   * drops a second-argument object).
   */
  loggerArgs?: 'message-first' | 'fields-first';
  /**
   * OpenTelemetry, through the `Meter` and `Tracer` your service already has (from
   * `@opentelemetry/api`: `metrics.getMeter('my-service')`, `trace.getTracer('my-service')`):
   * a client span per token request and the metrics in REFERENCE.md. Either may be left out.
   */
  telemetry?: TelemetryOptions;
  /** Called with every event (mint, refresh, store_error, token_error, cooldown, budget_exhausted), to count and alert on. */
  onEvent?: (event: AutopayAuthEvent) => void;
  /**
   * Given the promise of each background refresh, so a platform that ends a request's work with
   * its answer keeps the refresh alive: `waitUntil` from `cloudflare:workers`, from
   * `@vercel/functions`, or Next.js's `after`. Per request (`ctx.waitUntil`, Netlify's
   * `context.waitUntil`), pass it to `getToken` / `getTokenInfo` instead.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
  /**
   * In a browser (a page or a browser worker) a `clientSecret` or `privateKey` is refused, because anyone who
   * opens the page can read it. Set `true` only if you accept that. Node, Deno, Bun and
   * Workers are not browsers.
   */
  dangerouslyAllowBrowser?: boolean;
}

/** Where a token came from. */
export type TokenSource = 'memory' | 'kv' | 'network';

export interface TokenInfo {
  accessToken: string;
  /** The token type as the token endpoint sent it (`Bearer`, `bearer`…); `fetch` presents it as RFC 6750 spells the scheme. */
  tokenType: string;
  scope: string | null;
  /** Absolute expiry, ms since the Unix epoch (counted from when the request was sent). */
  expiresAt: number;
  source: TokenSource;
}

export interface AutopayAuthStats {
  mints: number;
  memoryHits: number;
  kvHits: number;
  kvErrors: number;
  /** Stored values that did not open (forged, tampered, another secret or version): misses. */
  kvRejected: number;
  failures: number;
  refreshes: number;
  coalesced: number;
  /** Times the mint budget refused a token request (each is logged with console.error). */
  budgetRefusals: number;
}

export type AutopayAuthErrorCode =
  | 'access_denied'
  | 'invalid_request'
  | 'rate_limited'
  | 'server_error'
  | 'network'
  | 'timeout'
  | 'invalid_response'
  | 'invalid_config'
  | 'invalid_argument'
  | 'mint_budget_exhausted'
  | 'store_unavailable';

export class AutopayAuthError extends Error {
  readonly name: 'AutopayAuthError';
  readonly code: AutopayAuthErrorCode;
  /** HTTP status of the token endpoint's answer, or null. */
  readonly status: number | null;
  /** The server's `error` field, or null. */
  readonly error: string | null;
  /** The server's `error_description`, or null. */
  readonly description: string | null;
  /** Seconds to wait (from `Retry-After`), or null. */
  readonly retryAfter: number | null;
  /** For `invalid_config`: the option at fault. */
  readonly option: string | null;
  /** For `network` and `timeout`: the host the token request was for (never a path or query). */
  readonly host: string | null;
  /** For `network` and `timeout`: the platform's own error. */
  readonly cause?: unknown;
}

/** Per-call options of `getToken` and `getTokenInfo`. */
export interface CallOptions {
  /**
   * Stop waiting when this signal aborts: the call rejects with the signal's reason. A token
   * request other callers share goes on, and its token is cached as usual.
   */
  signal?: AbortSignal;
  /**
   * Given a background refresh this call starts (this request's `ctx.waitUntil.bind(ctx)`,
   * Netlify's `context.waitUntil`), instead of the client's `waitUntil` option.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
}

export class AutopayAuth {
  constructor(options: AutopayAuthOptions);
  getToken(options?: CallOptions): Promise<string>;
  getTokenInfo(options?: CallOptions): Promise<TokenInfo>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /**
   * The API refused `token` (your own HTTP client got a 401 with it): drops it here and in the
   * store only if it is still the token held (compare-and-delete), so the next call mints at
   * most once for the whole fleet. `'dropped'`: get a new token and retry once; `'not_held'`:
   * already replaced, retry with the current one; `'kept'`: a refusal hold is on (the API refuses
   * fresh tokens too), do not retry.
   */
  refused(token: string): Promise<'dropped' | 'not_held' | 'kept'>;
  /**
   * The headers that authorize a `method` call to `url` with the current token, for an HTTP
   * client of your own: `{ authorization: 'Bearer …' }`, or for a DPoP-bound token
   * `{ authorization: 'DPoP …', dpop: '<proof>' }` with a fresh proof for exactly this method and
   * URL. Make them per request: a proof is single-use.
   */
  authorize(method: string, url: string): Promise<Record<string, string>>;
  /**
   * Keeps the `DPoP-Nonce` header a server answered a call to `url` with, for the next proofs
   * (`auth.fetch` does this itself). `true` when it is new: then a 401 with
   * `WWW-Authenticate: DPoP error="use_dpop_nonce"` is worth one more try with fresh headers.
   */
  learnNonce(url: string, nonce: string | null | undefined): boolean;
  /**
   * The emergency lever: forgets the token in memory and deletes the shared record, and clears
   * this instance's holds, so every instance of the fleet mints anew. Not for a refused token
   * (use `refused`); the fleet's cooldowns and mint budget stay.
   */
  invalidate(): Promise<void>;
  stats(): AutopayAuthStats;
  /** The quotas the token endpoint declared, with what each has left (less what the fleet sent since it said). */
  quotas(): DeclaredQuota[];
  /** The `label` option, or `undefined`. */
  readonly label: string | undefined;
  /** The store key of this client's tokens: its configuration's identity (never a secret). */
  readonly cacheKey: string;
}

/** Options of a registry of clients: `max`, named `clients`, and options every client shares (`kv`, `fetch`, `logger`, `telemetry`, a policy…). */
export type AutopayAuthClientsOptions = Partial<AutopayAuthCommonOptions> & {
  /** Most clients kept at once; the least recently used is let go past it. Default 100. */
  max?: number;
  /** Named credential sets, as `define(name, options)` each. */
  clients?: Record<string, Partial<AutopayAuthOptions>>;
};

/**
 * Many credential sets in one process or isolate: one client per configuration identity (its
 * cache key), built on first use, at most `max` kept, all sharing one store and the one wasm
 * instance. Configurations that differ in any field that changes the token never share a
 * record, lock, flight, budget or cooldown.
 */
export class AutopayAuthClients {
  constructor(options?: AutopayAuthClientsOptions);
  /** Names a credential set; its `label` is `name` unless it sets one. Checked now. */
  define(name: string, options: Partial<AutopayAuthOptions>): this;
  /** The client named `name`, or the client for these options (merged over the shared ones), keyed by identity. */
  get(nameOrOptions: string | Partial<AutopayAuthOptions>): AutopayAuth;
  /** The names given to `define`. */
  names(): string[];
  /** Clients built and kept now. */
  readonly size: number;
}

/** The user's limits on token requests, for the whole fleet. */
export interface MintBudget {
  perHour?: number;
  perDay?: number;
  /** Per calendar month in UTC (resets at 00:00 UTC on the 1st). */
  perMonth?: number;
}

/** A quota the token endpoint declared in its answers. */
export interface DeclaredQuota {
  /** `auth0-client:per_hour`, `auth0-organization:per_day`, `okta`, `ratelimit:<name>`, `ratelimit`. */
  name: string;
  /** Its size, or `null` when the endpoint did not say. */
  limit: number | null;
  /** Token requests left (the fleet stops before the last 2 % of `limit`). */
  remaining: number;
  /** When it resets, ms since the Unix epoch. */
  resetAt: number;
}

/** In-memory `KVNamespace` (honours `expirationTtl`, which must be at least 60). */
export class MemoryKV implements KVNamespaceLike {
  constructor(options?: { now?: () => number });
  get(key: string): Promise<string | null>;
  put(key: string, value: string, options?: { expirationTtl?: number; expiration?: number }): Promise<void>;
  delete(key: string): Promise<void>;
  deleteIf(key: string, expected: string): Promise<boolean>;
  list(options?: { prefix?: string }): Promise<{ keys: { name: string; expiration?: number }[]; list_complete: true }>;
}

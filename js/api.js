// The public classes around the wasm client. All token policy lives in Rust; this file only
// (1) answers from the lease the wasm side publishes — a token it may hand out until
// `lease.until` without crossing into wasm; (2) lets concurrent calls that miss the lease wait
// on one JS promise, this host's single flight (in Cloudflare Workers, requests of one isolate
// may only await each other through JS promises, which workerd resumes in each awaiting
// request's own context); (3) lets each caller stop waiting with its own AbortSignal, while the
// shared token request goes on; (4) turns error reports into AutopayAuthError.

/** Every failure of the library: `code` is stable, `status`/`error`/`description` come from the server. */
export class AutopayAuthError extends Error {
  constructor(report) {
    super(report.message, report.cause === undefined ? undefined : { cause: report.cause });
    this.name = 'AutopayAuthError';
    this.code = report.code;
    this.status = report.status ?? null;
    this.error = report.error ?? null;
    this.description = report.description ?? null;
    this.retryAfter = report.retryAfter ?? null;
    this.option = report.field ?? null;
    this.host = report.host ?? null;
  }
}

/** The Node entries' error when the `.wasm` is not beside them — as after a bundler (esbuild,
 * CDK's NodejsFunction, SAM) put the JavaScript in one file and left the wasm behind. */
export function wasmMissing(cause, where) {
  if (cause?.code !== 'ENOENT') return cause;
  return new Error(
    `autopay-auth: its WebAssembly module is not where the package put it (${where}): a bundler ` +
      "copied the JavaScript and not the .wasm. Import 'autopay-auth/standalone', which carries " +
      'the module inside its JavaScript, or copy autopay_auth_bg.wasm next to the bundle.',
    { cause },
  );
}

function rethrow(e) {
  if (e !== null && typeof e === 'object' && !(e instanceof Error) && typeof e.code === 'string') {
    throw new AutopayAuthError(e);
  }
  throw e;
}

/** A promise that rejects with `signal.reason` when the signal aborts (never resolves). */
function abortion(signal) {
  if (signal === undefined || signal === null) return undefined;
  const aborted = signal.aborted
    ? Promise.reject(signal.reason)
    : new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  aborted.catch(() => {}); // a caller that finished first does not care
  return aborted;
}

function abortable(promise, signal) {
  const aborted = abortion(signal);
  return aborted === undefined ? promise : Promise.race([promise, aborted]);
}

const copy = (info) => ({ ...info });

export function makeApi(WasmClient) {
  class AutopayAuth {
    #client;
    #lease = { until: 0, info: null };
    #leaseHits = 0;
    #pending = null;
    #joined = 0;

    #expiresAt = null; // of the last token handed out, for the remaining-life gauge

    constructor(options) {
      try {
        this.#client = new WasmClient(options, this.#lease);
      } catch (e) {
        rethrow(e);
      }
      const meter = this.#client.meter;
      if (meter !== undefined) this.#observe(meter);
    }

    /** The `label` option, or `undefined`. */
    get label() {
      return this.#client.label;
    }

    /** The store key of this client's tokens: its configuration's identity, never a secret. */
    get cacheKey() {
      return this.#client.cacheKey;
    }

    /** The OpenTelemetry instruments read from `stats()` and the current token, observed when
     * the service's reader collects (the token requests' span, duration and errors are the wasm
     * side's). Attributes name sources and nothing else. */
    #observe(meter) {
      const counter = (name, description, unit) => meter.createObservableCounter(name, { description, unit });
      const mints = counter('autopay_auth.mints', 'Tokens obtained from the token endpoint', '{token}');
      const hits = counter('autopay_auth.cache.hits', 'Calls answered with a cached token, by autopay_auth.cache.source (memory, store)', '{call}');
      const storeErrors = counter('autopay_auth.store.errors', 'Store calls that failed or timed out (survived)', '{call}');
      const rejected = counter('autopay_auth.store.rejected', 'Stored records that did not open (forged, tampered, foreign)', '{record}');
      const refusals = counter('autopay_auth.budget.refusals', 'Token requests the mint budget refused', '{request}');
      const remaining = meter.createObservableGauge('autopay_auth.token.remaining', { description: 'Seconds the current token has left', unit: 's' });
      const quota = meter.createObservableGauge('autopay_auth.quota.remaining', { description: 'Token requests a quota the token endpoint declared has left, by autopay_auth.quota.name', unit: '{request}' });
      const all = [mints, hits, storeErrors, rejected, refusals, remaining, quota];
      // a labelled client's measurements carry its label: many clients, one meter
      const label = this.#client.label;
      const at = label === undefined ? (attrs) => attrs : (attrs) => ({ ...attrs, 'autopay_auth.client': label });
      const none = at(undefined);
      const observe = (result) => {
        const s = this.stats();
        result.observe(mints, s.mints, none);
        result.observe(hits, s.memoryHits, at({ 'autopay_auth.cache.source': 'memory' }));
        result.observe(hits, s.kvHits, at({ 'autopay_auth.cache.source': 'store' }));
        result.observe(storeErrors, s.kvErrors, none);
        result.observe(rejected, s.kvRejected, none);
        result.observe(refusals, s.budgetRefusals, none);
        const expiresAt = this.#lease.info?.expiresAt ?? this.#expiresAt;
        if (expiresAt !== null) result.observe(remaining, Math.max(0, (expiresAt - Date.now()) / 1000), none);
        for (const q of this.quotas()) result.observe(quota, q.remaining, at({ 'autopay_auth.quota.name': q.name }));
      };
      meter.addBatchObservableCallback(observe, all);
    }

    /** The access token: from memory, KV, or one token request shared by all callers. */
    getToken(options) {
      if (options === undefined && Date.now() < this.#lease.until) {
        this.#leaseHits++;
        return Promise.resolve(this.#lease.info.accessToken);
      }
      return this.getTokenInfo(options).then((i) => i.accessToken);
    }

    /**
     * `{ accessToken, tokenType, scope, expiresAt, source }`, a new object for each caller.
     * `options.waitUntil` is given a background refresh this call starts (the platform's
     * `waitUntil`, e.g. `ctx.waitUntil.bind(ctx)`), instead of the client's `waitUntil` option.
     */
    getTokenInfo(options) {
      try {
        const signal = options?.signal;
        const waitUntil = options?.waitUntil;
        // (a waitUntil that is not a function goes to the wasm side, which rejects it)
        if (Date.now() < this.#lease.until && !signal?.aborted && (waitUntil === undefined || typeof waitUntil === 'function')) {
          this.#leaseHits++;
          return Promise.resolve(copy(this.#lease.info));
        }
        return this.#info(signal, waitUntil).then((info) => {
          this.#expiresAt = info.expiresAt;
          return copy(info);
        });
      } catch (e) {
        return Promise.reject(e); // a getter of `options` threw: a rejection, never a throw
      }
    }

    #info(signal, waitUntil) {
      let pending = this.#pending;
      if (pending === null) {
        pending = this.#client
          .tokenInfo(waitUntil)
          .catch(rethrow)
          .finally(() => {
            if (this.#pending === pending) this.#pending = null;
          });
        this.#pending = pending;
      } else {
        this.#joined++;
      }
      return abortable(pending, signal);
    }

    /**
     * `fetch(apiBaseUrl + path, init)` with `Authorization: Bearer <token>`; one retry after a
     * 401. `init.signal` stops the token wait and the API call; the API call's own failures
     * (an `AbortError`, fetch's `TypeError`) reach the caller unchanged.
     */
    fetch(path, init) {
      try {
        const signal = init?.signal;
        // without an API base the client refuses at once: no token is got for nothing
        const warm = Date.now() < this.#lease.until || !this.#client.hasApiBase;
        const ready = warm ? Promise.resolve() : this.#info(signal);
        return ready.then(() => this.#client.fetch(path, init, abortion(signal))).catch(rethrow);
      } catch (e) {
        return Promise.reject(e); // a getter of `init` threw: a rejection, never a throw
      }
    }

    /**
     * The headers that authorize a `method` call to `url` with the current token, for an HTTP
     * client of your own: `{ authorization }`, plus `{ dpop }` — a fresh proof for exactly this
     * call — when the token is DPoP-bound. Make them per request: a proof is single-use.
     */
    authorize(method, url) {
      return this.#client.authorize(method, url).catch(rethrow);
    }

    /** Keeps the `DPoP-Nonce` a server answered a call to `url` with: `true` when it is new. */
    learnNonce(url, nonce) {
      if (typeof url !== 'string') return false;
      return this.#client.learnNonce(url, typeof nonce === 'string' ? nonce : undefined);
    }

    /** The API refused `token`: compare-and-delete, here and in the store. */
    refused(token) {
      return this.#client.refused(token).catch(rethrow);
    }

    /** The emergency lever: forgets the token in memory and in KV. */
    invalidate() {
      return this.#client.invalidate().catch(rethrow);
    }

    /** The quotas the token endpoint declared: `[{ name, limit, remaining, resetAt }]`. */
    quotas() {
      return this.#client.quotas();
    }

    /** `{ mints, memoryHits, kvHits, kvErrors, kvRejected, failures, refreshes, coalesced, budgetRefusals }`. */
    stats() {
      const s = this.#client.stats();
      s.memoryHits += this.#leaseHits;
      s.coalesced += this.#joined;
      return s;
    }
  }

  /**
   * Many credential sets in one process or isolate: one client per configuration identity (its
   * cache key), built on first use and kept — at most `max`, the least recently used let go —
   * all sharing the options given here (one store, one `fetch`, one logger and meter) and the
   * one wasm instance. Two configurations that differ in any field that changes the token
   * (endpoint, client id, credential, audience, scope, resource, further parameters or headers)
   * are two clients that share no record, lock, flight, budget or cooldown.
   */
  class AutopayAuthClients {
    #shared;
    #max;
    #named = new Map(); // name -> options
    #live = new Map(); // cache key -> AutopayAuth, least recently used first

    constructor(options) {
      const { max = 100, clients, ...shared } = options ?? {};
      if (!Number.isInteger(max) || max < 1 || max > 100_000) {
        throw new AutopayAuthError({ code: 'invalid_config', field: 'max', message: 'max must be a whole number from 1 to 100000' });
      }
      if (clients !== undefined && (clients === null || typeof clients !== 'object')) {
        throw new AutopayAuthError({ code: 'invalid_config', field: 'clients', message: 'clients must be an object of named client options' });
      }
      this.#shared = shared;
      this.#max = max;
      for (const [name, o] of Object.entries(clients ?? {})) this.define(name, o);
    }

    /** Names a credential set (`get(name)` builds it on first use); its label is `name` unless it sets one. */
    define(name, options) {
      if (typeof name !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(name)) {
        throw new AutopayAuthError({ code: 'invalid_config', field: 'label', message: 'a client name must be 1 to 64 letters, digits, `.`, `_`, `:` or `-`' });
      }
      if (this.#named.has(name)) {
        throw new AutopayAuthError({ code: 'invalid_config', field: 'label', message: `a client named ${name} is defined already` });
      }
      const merged = { label: name, ...this.#shared, ...options };
      WasmClient.keyOf(merged); // refuse a bad configuration now, not on first use
      this.#named.set(name, merged);
      return this;
    }

    /** The client named `name` (see `define`), or the client for these options, keyed by their identity. */
    get(nameOrOptions) {
      let merged;
      if (typeof nameOrOptions === 'string') {
        merged = this.#named.get(nameOrOptions);
        if (merged === undefined) {
          throw new AutopayAuthError({ code: 'invalid_argument', message: `no client is named ${nameOrOptions}` });
        }
      } else {
        merged = { ...this.#shared, ...nameOrOptions };
      }
      let key;
      try {
        key = WasmClient.keyOf(merged);
      } catch (e) {
        rethrow(e);
      }
      let client = this.#live.get(key);
      if (client === undefined) {
        client = new AutopayAuth(merged);
        if (this.#live.size >= this.#max) this.#live.delete(this.#live.keys().next().value);
      } else {
        this.#live.delete(key); // moved to the most recently used end
      }
      this.#live.set(key, client);
      return client;
    }

    /** The names `define` was given. */
    names() {
      return [...this.#named.keys()];
    }

    /** Clients built and kept now (at most `max`). */
    get size() {
      return this.#live.size;
    }
  }

  return { AutopayAuth, AutopayAuthClients };
}

// The public classes around the wasm client. All token policy lives in Rust; this file only
// (1) answers from the lease the wasm side publishes — a token it may hand out until
// `lease.until` without crossing into wasm; (2) lets concurrent calls that miss the lease wait
// on one JS promise (in Cloudflare Workers, requests of one isolate may only await each other
// through JS promises, which workerd resumes in each awaiting request's own context — a shared
// Rust future would resume them in the first request's); (3) turns error objects into
// AutopayAuthError.

/** Every failure of the library: `code` is stable, `status`/`error`/`description` come from the server. */
export class AutopayAuthError extends Error {
  constructor(fields) {
    super(fields.message);
    this.name = 'AutopayAuthError';
    this.code = fields.code;
    this.status = fields.status ?? null;
    this.error = fields.error ?? null;
    this.description = fields.description ?? null;
    this.retryAfter = fields.retryAfter ?? null;
    this.option = fields.option ?? null;
  }
}

function rethrow(e) {
  if (e !== null && typeof e === 'object' && !(e instanceof Error) && typeof e.code === 'string') {
    throw new AutopayAuthError(e);
  }
  throw e;
}

export function makeApi(WasmClient) {
  class AutopayAuth {
    #client;
    #lease = { until: 0, info: null };
    #leaseHits = 0;
    #pending = null;
    #joined = 0;

    constructor(options) {
      try {
        this.#client = new WasmClient(options, this.#lease);
      } catch (e) {
        rethrow(e);
      }
    }

    /** The access token: from memory, KV, or one token request shared by all callers. */
    getToken() {
      const lease = this.#lease;
      if (Date.now() < lease.until) {
        this.#leaseHits++;
        return Promise.resolve(lease.info.accessToken);
      }
      return this.#info().then((i) => i.accessToken);
    }

    /** `{ accessToken, tokenType, scope, expiresAt, source }`. */
    getTokenInfo() {
      const lease = this.#lease;
      if (Date.now() < lease.until) {
        this.#leaseHits++;
        return Promise.resolve({ ...lease.info });
      }
      return this.#info();
    }

    #info() {
      if (this.#pending !== null) {
        this.#joined++;
        return this.#pending;
      }
      const pending = this.#client
        .tokenInfo()
        .catch(rethrow)
        .finally(() => {
          if (this.#pending === pending) this.#pending = null;
        });
      this.#pending = pending;
      return pending;
    }

    /** `fetch(apiBaseUrl + path, init)` with `Authorization: Bearer <token>`; one retry after a 401. */
    fetch(path, init) {
      const ready = Date.now() < this.#lease.until ? Promise.resolve() : this.#info();
      return ready.then(() => this.#client.fetch(path, init)).catch(rethrow);
    }

    /** Forgets the token in memory and in KV. */
    invalidate() {
      return this.#client.invalidate().catch(rethrow);
    }

    /** `{ mints, memoryHits, kvHits, kvErrors, failures, refreshes, coalesced }`. */
    stats() {
      const s = this.#client.stats();
      s.memoryHits += this.#leaseHits;
      s.coalesced += this.#joined;
      return s;
    }
  }
  return { AutopayAuth };
}

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

    constructor(options) {
      try {
        this.#client = new WasmClient(options, this.#lease);
      } catch (e) {
        rethrow(e);
      }
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
        return this.#info(signal, waitUntil).then(copy);
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
        const ready = Date.now() < this.#lease.until ? Promise.resolve() : this.#info(signal);
        return ready.then(() => this.#client.fetch(path, init, abortion(signal))).catch(rethrow);
      } catch (e) {
        return Promise.reject(e); // a getter of `init` threw: a rejection, never a throw
      }
    }

    /** The API refused `token`: compare-and-delete, here and in the store. */
    refused(token) {
      return this.#client.refused(token).catch(rethrow);
    }

    /** The emergency lever: forgets the token in memory and in KV. */
    invalidate() {
      return this.#client.invalidate().catch(rethrow);
    }

    /** `{ mints, memoryHits, kvHits, kvErrors, kvRejected, failures, refreshes, coalesced, budgetRefusals }`. */
    stats() {
      const s = this.#client.stats();
      s.memoryHits += this.#leaseHits;
      s.coalesced += this.#joined;
      return s;
    }
  }
  return { AutopayAuth };
}

// An in-memory store with the Cloudflare KVNamespace shape and its rules: string values,
// `expirationTtl` in seconds (at least 60) or `expiration` in epoch seconds, expired keys gone.

export class MemoryKV {
  #entries = new Map();
  #now;

  /** `now` (ms since epoch) can be replaced for tests. */
  constructor({ now = Date.now } = {}) {
    this.#now = now;
  }

  #live(key) {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== null && e.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  async get(key, options) {
    const e = this.#live(String(key));
    if (e === undefined) return null;
    const type = typeof options === 'string' ? options : options?.type;
    return type === 'json' ? JSON.parse(e.value) : e.value;
  }

  async put(key, value, options = {}) {
    if (typeof value !== 'string') throw new TypeError('MemoryKV: value must be a string');
    let expiresAt = null;
    if (options.expirationTtl !== undefined) {
      const ttl = Number(options.expirationTtl);
      if (!Number.isFinite(ttl) || ttl < 60) {
        throw new Error('MemoryKV: expirationTtl must be at least 60 seconds (as in Workers KV)');
      }
      expiresAt = this.#now() + ttl * 1000;
    } else if (options.expiration !== undefined) {
      expiresAt = Number(options.expiration) * 1000;
      if (!(expiresAt >= this.#now() + 60_000)) {
        throw new Error('MemoryKV: expiration must be at least 60 seconds in the future');
      }
    }
    this.#entries.set(String(key), { value, expiresAt });
  }

  async delete(key) {
    this.#entries.delete(String(key));
  }

  /** Deletes `key` only while it holds `expected` (one step: JS runs it to the end). */
  async deleteIf(key, expected) {
    if (this.#live(String(key))?.value !== expected) return false;
    this.#entries.delete(String(key));
    return true;
  }

  async list({ prefix = '' } = {}) {
    const keys = [];
    for (const name of [...this.#entries.keys()].sort()) {
      const e = this.#live(name);
      if (e === undefined || !name.startsWith(prefix)) continue;
      keys.push(e.expiresAt === null ? { name } : { name, expiration: Math.floor(e.expiresAt / 1000) });
    }
    return { keys, list_complete: true, cacheStatus: null };
  }
}

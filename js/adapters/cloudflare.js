// One mint for a Cloudflare Worker of your own: a Durable Object holds the token record, the
// fleet state and the minting lock for every isolate of every Worker bound to it — one object,
// one thread, its storage strongly consistent — so `putIfAbsent` and `deleteIf` are atomic (the
// object's input gate holds other calls while it reads and writes) and a lock winner always sees
// the record written just before it won. Workers KV alone shares the token but cannot lock.
//
//   // your Worker's main module
//   export { AutopayAuthStore } from 'autopay-auth/cloudflare';
//   import { durableObjectKV } from 'autopay-auth/cloudflare';
//   const auth = new AutopayAuth({ …, kv: durableObjectKV(env.AUTOPAY_STORE) });
//   // wrangler.toml: [[durable_objects.bindings]] name = "AUTOPAY_STORE", class_name = "AutopayAuthStore"
//   //                [[migrations]] tag = "v1", new_sqlite_classes = ["AutopayAuthStore"]
import { DurableObject } from 'cloudflare:workers';

/** The Durable Object: a small expiring key-value store with an atomic claim and a
 * compare-and-delete, called over RPC by `durableObjectKV`. Values are kept with their deadline
 * and checked on every read; an alarm sweeps what has expired. */
export class AutopayAuthStore extends DurableObject {
  async #live(key) {
    const e = await this.ctx.storage.get(key);
    return e !== undefined && e.until > Date.now() ? e : undefined;
  }

  async #set(key, value, ttlMs) {
    const until = Date.now() + ttlMs;
    await this.ctx.storage.put(key, { value, until });
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > until) await this.ctx.storage.setAlarm(until);
  }

  async kvGet(key) {
    return (await this.#live(key))?.value ?? null;
  }

  async kvPut(key, value, ttlMs) {
    await this.#set(key, value, ttlMs);
  }

  async kvDelete(key) {
    await this.ctx.storage.delete(key);
  }

  async kvPutIfAbsent(key, value, ttlMs) {
    if ((await this.#live(key)) !== undefined) return false;
    await this.#set(key, value, ttlMs);
    return true;
  }

  async kvDeleteIf(key, expected) {
    if ((await this.#live(key))?.value !== expected) return false;
    await this.ctx.storage.delete(key);
    return true;
  }

  /** Sweeps what has expired, and waits for the next deadline. */
  async alarm() {
    const now = Date.now();
    let next = null;
    for (const [key, e] of await this.ctx.storage.list()) {
      if (e?.until <= now) await this.ctx.storage.delete(key);
      else if (e?.until !== undefined && (next === null || e.until < next)) next = e.until;
    }
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}

/** The store the client uses: `kv: durableObjectKV(env.AUTOPAY_STORE)`. Every isolate and every
 * Worker bound to the same namespace (and `name`) shares one object, and mints once. */
export function durableObjectKV(namespace, { name = 'autopay-auth' } = {}) {
  if (namespace === null || typeof namespace !== 'object' || typeof namespace.idFromName !== 'function') {
    throw new TypeError('durableObjectKV: a Durable Object namespace binding (env.AUTOPAY_STORE) is required');
  }
  if (typeof name !== 'string' || name === '') throw new TypeError('durableObjectKV: name must be a non-empty string');
  let stub;
  const object = () => (stub ??= namespace.get(namespace.idFromName(name)));
  return {
    minExpirationTtl: 1,
    get: (key) => object().kvGet(key),
    put: (key, value, { expirationTtl } = {}) => object().kvPut(key, value, (expirationTtl ?? 365 * 86_400) * 1000),
    delete: (key) => object().kvDelete(key),
    putIfAbsent: (key, value, { ttlMs }) => object().kvPutIfAbsent(key, value, ttlMs),
    deleteIf: (key, expected) => object().kvDeleteIf(key, expected),
  };
}

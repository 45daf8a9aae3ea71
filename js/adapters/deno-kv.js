// Deno KV (`Deno.openKv()`) as the shared token store.
// Guarantee: processes sharing one Deno KV mint once between them (an atomic check-and-set
// minting lock). Deno deletes expired keys lazily, so the lock also carries its own deadline.

/** Wraps a `Deno.Kv` in the KVNamespace shape (+ `putIfAbsent`). Keys go under `prefix`. */
export function denoKV(kv, { prefix = ['autopay-auth'] } = {}) {
  if (kv === null || typeof kv !== 'object' || typeof kv.atomic !== 'function') {
    throw new TypeError('denoKV: a Deno.Kv (from Deno.openKv()) is required');
  }
  const k = (key) => [...prefix, key];
  return {
    async get(key) {
      const entry = await kv.get(k(key));
      return typeof entry.value === 'string' ? entry.value : null;
    },
    async put(key, value, { expirationTtl } = {}) {
      await kv.set(k(key), value, expirationTtl === undefined ? undefined : { expireIn: expirationTtl * 1000 });
    },
    async delete(key) {
      await kv.delete(k(key));
    },
    async putIfAbsent(key, value, { ttlMs }) {
      const current = await kv.get(k(key));
      const held = current.value !== null && typeof current.value === 'object' && current.value.until > Date.now();
      if (held) return false;
      const res = await kv
        .atomic()
        .check(current)
        .set(k(key), { value, until: Date.now() + ttlMs }, { expireIn: ttlMs })
        .commit();
      return res.ok;
    },
  };
}

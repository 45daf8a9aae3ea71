// Deno KV (`Deno.openKv()`) as the shared token store.
// Guarantee: processes sharing one Deno KV mint once between them (an atomic check-and-set
// minting lock). Deno deletes expired keys lazily, so the lock also carries its own deadline.

const BUSY = /database is locked|busy/i;

/** Runs `op`, retrying while a local (SQLite) Deno KV is busy with another process: at most 8
 * attempts, 10 ms doubling (about 2.5 s in all). Other errors are thrown at once. */
async function whenFree(op) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (attempt >= 7 || !BUSY.test(String(e?.message))) throw e;
      await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
    }
  }
}

/** Wraps a `Deno.Kv` in the KVNamespace shape (+ `putIfAbsent`). Keys go under `prefix`. */
export function denoKV(kv, { prefix = ['autopay-auth'] } = {}) {
  if (kv === null || typeof kv !== 'object' || typeof kv.atomic !== 'function') {
    throw new TypeError('denoKV: a Deno.Kv (from Deno.openKv()) is required');
  }
  const k = (key) => [...prefix, key];
  return {
    minExpirationTtl: 1,
    async get(key) {
      const entry = await whenFree(() => kv.get(k(key)));
      return typeof entry.value === 'string' ? entry.value : null;
    },
    async put(key, value, { expirationTtl } = {}) {
      const options = expirationTtl === undefined ? undefined : { expireIn: expirationTtl * 1000 };
      await whenFree(() => kv.set(k(key), value, options));
    },
    async delete(key) {
      await whenFree(() => kv.delete(k(key)));
    },
    async putIfAbsent(key, value, { ttlMs }) {
      return whenFree(async () => {
        const current = await kv.get(k(key));
        const held = current.value !== null && typeof current.value === 'object' && current.value.until > Date.now();
        if (held) return false;
        const res = await kv
          .atomic()
          .check(current)
          .set(k(key), { value, until: Date.now() + ttlMs }, { expireIn: ttlMs })
          .commit();
        return res.ok;
      });
    },
  };
}

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

/** The string a stored entry holds while it lives: a plain string (no TTL), or `{ value, until }`
 * before `until`; anything else, or a deadline passed, is nothing. */
function held(v) {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof v.value === 'string' && v.until > Date.now()) return v.value;
  return null;
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
      return held(entry.value);
    },
    // with its deadline beside it: Deno KV deletes expired keys late (`expireIn` is a hint)
    async put(key, value, { expirationTtl } = {}) {
      if (expirationTtl === undefined) return void (await whenFree(() => kv.set(k(key), value)));
      const ms = expirationTtl * 1000;
      await whenFree(() => kv.set(k(key), { value, until: Date.now() + ms }, { expireIn: ms }));
    },
    async delete(key) {
      await whenFree(() => kv.delete(k(key)));
    },
    // an atomic check of the entry read: deleted only if nothing changed it since
    async deleteIf(key, expected) {
      return whenFree(async () => {
        const current = await kv.get(k(key));
        if (held(current.value) !== expected) return false;
        const res = await kv.atomic().check(current).delete(k(key)).commit();
        return res.ok;
      });
    },
    async putIfAbsent(key, value, { ttlMs }) {
      return whenFree(async () => {
        const current = await kv.get(k(key));
        if (held(current.value) !== null) return false;
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

// Postgres as the shared token store — for services whose shared state is Postgres (Supabase,
// Neon, RDS, Cloud SQL, …), through the client they already have: node-postgres (`pg`: a `Pool`
// or a `Client`) or postgres.js (`postgres(url)`). Guarantee: processes sharing one table mint
// once between them. The minting lock is `INSERT … ON CONFLICT DO UPDATE … WHERE` the row has
// expired (one statement, atomic under the row lock); its release and the refused token's
// delete are `DELETE … WHERE value = $2` (compare-and-delete). Expiry is the database's clock
// (`now()`), checked on every read, so the instances' clocks never matter; 1-second TTLs.
//
// The table (a migration of yours, or `createTable: true` on first use):
//   CREATE TABLE IF NOT EXISTS autopay_auth_kv (
//     key text PRIMARY KEY, value text NOT NULL, expires_at timestamptz NOT NULL);

const NAME = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/** The SQL that makes the table (schema-qualified names allowed: `tokens.autopay_auth_kv`). */
export function postgresTableSql(table = 'autopay_auth_kv') {
  if (!NAME.test(table)) throw new TypeError('postgresKV: table must be a lowercase SQL name (schema.table allowed)');
  return `CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, value text NOT NULL, expires_at timestamptz NOT NULL)`;
}

/** One query, whichever client: the rows, and how many rows the statement touched. */
function runner(client) {
  if (typeof client === 'function' && typeof client.unsafe === 'function') {
    // postgres.js: `sql.unsafe(text, params)` resolves to the rows, with `count`
    return async (text, params) => {
      const rows = await client.unsafe(text, params);
      return { rows, count: rows.count ?? rows.length };
    };
  }
  if (client !== null && typeof client === 'object' && typeof client.query === 'function') {
    // node-postgres: `query(text, params)` resolves to `{ rows, rowCount }`
    return async (text, params) => {
      const r = await client.query(text, params);
      return { rows: r.rows, count: r.rowCount ?? 0 };
    };
  }
  throw new TypeError('postgresKV: a node-postgres Pool or Client, or a postgres.js `sql`, is required');
}

/** Wraps a Postgres client and a table in the KVNamespace shape (+ `putIfAbsent`, `deleteIf`). */
export function postgresKV(client, { table = 'autopay_auth_kv', prefix = '', createTable = false } = {}) {
  const create = postgresTableSql(table);
  if (typeof prefix !== 'string') throw new TypeError('postgresKV: prefix must be a string');
  const run = runner(client);
  let ready = createTable ? null : Promise.resolve();
  // the table, once, on first use (a failed attempt is tried again by the next call)
  const q = async (text, params) => {
    if (ready === null) ready = run(create, []).then(() => undefined, (e) => ((ready = null), Promise.reject(e)));
    await ready;
    return run(text, params);
  };
  return {
    minExpirationTtl: 1,
    async get(key) {
      const { rows } = await q(`SELECT value FROM ${table} WHERE key = $1 AND expires_at > now()`, [prefix + key]);
      return rows.length === 0 ? null : rows[0].value;
    },
    async put(key, value, { expirationTtl } = {}) {
      // without a TTL a value lives for a year (the package always gives one)
      const ms = expirationTtl === undefined ? 365 * 86_400_000 : Math.round(expirationTtl * 1000);
      await q(
        `INSERT INTO ${table} (key, value, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
        [prefix + key, value, ms],
      );
    },
    async delete(key) {
      await q(`DELETE FROM ${table} WHERE key = $1`, [prefix + key]);
    },
    // only while the row holds `expected` and has not expired (fenced release, refused record)
    async deleteIf(key, expected) {
      const { count } = await q(`DELETE FROM ${table} WHERE key = $1 AND value = $2 AND expires_at > now()`, [prefix + key, expected]);
      return count > 0;
    },
    // absent, or there but expired: taken; a live row is never overwritten
    async putIfAbsent(key, value, { ttlMs }) {
      const { count } = await q(
        `INSERT INTO ${table} AS t (key, value, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
         WHERE t.expires_at <= now()`,
        [prefix + key, value, Math.round(ttlMs)],
      );
      return count > 0;
    },
  };
}

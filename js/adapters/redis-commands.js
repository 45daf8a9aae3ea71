// The store shape over raw Redis commands, shared by the Redis (TCP) and Upstash (HTTP)
// adapters: both send the same commands, so they store the same bytes under the same keys and
// one database serves both kinds of client.

const DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** `cmd(...args) → Promise<reply>` sends one Redis command; keys go under `prefix`. */
export function redisCommands(cmd, prefix) {
  return {
    minExpirationTtl: 1,
    async get(key) {
      const value = await cmd('GET', prefix + key);
      return typeof value === 'string' ? value : null;
    },
    async put(key, value, { expirationTtl } = {}) {
      if (expirationTtl === undefined) await cmd('SET', prefix + key, value);
      else await cmd('SET', prefix + key, value, 'EX', Math.floor(expirationTtl));
    },
    async delete(key) {
      await cmd('DEL', prefix + key);
    },
    async putIfAbsent(key, value, { ttlMs }) {
      return (await cmd('SET', prefix + key, value, 'PX', Math.ceil(ttlMs), 'NX')) === 'OK';
    },
    // compare-and-delete in one step (Redis runs a script atomically): the fenced release of
    // the minting lock, and the delete of a refused token's record
    async deleteIf(key, expected) {
      return Number(await cmd('EVAL', DELETE_IF, '1', prefix + key, expected)) === 1;
    },
  };
}

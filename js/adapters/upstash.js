// Upstash Redis over HTTP (`@upstash/redis`) as the shared token store: for Vercel, Netlify,
// Deno Deploy and every runtime that cannot open a TCP connection to Redis.
// Guarantee: instances sharing one Upstash database mint once between them (an atomic
// `SET … PX … NX` minting lock). Values are stored exactly as the Redis adapter stores them,
// so Node servers on `redisKV` and edge functions on `upstashKV` can share one database.
import { redisCommands } from './redis-commands.js';

/** Wraps an `@upstash/redis` `Redis` in the KVNamespace shape (+ `putIfAbsent`). */
export function upstashKV(redis, { prefix = '' } = {}) {
  // The commands go through the instance's own requester — its URL, token, retries and
  // response encoding (base64 by default, decoded by it) — and not through its command methods,
  // which JSON-parse every value they can (automaticDeserialization): '{"a":1}' or '42' would
  // come back as an object or a number, not byte for byte.
  const requester = redis !== null && typeof redis === 'object' ? redis.client : undefined;
  if (typeof requester?.request !== 'function') {
    throw new TypeError('upstashKV: an @upstash/redis Redis instance is required (new Redis({ url, token }))');
  }
  if (typeof prefix !== 'string') throw new TypeError('upstashKV: prefix must be a string');
  const cmd = async (...args) => {
    const { result, error } = await requester.request({ body: args.map(String) });
    if (error) throw new Error(`Upstash ${args[0]} failed: ${error}`);
    return result;
  };
  return redisCommands(cmd, prefix);
}

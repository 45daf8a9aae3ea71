import type { Redis } from '@upstash/redis';
import type { KVNamespaceLike } from './index.js';

/**
 * Upstash Redis (over HTTP, `@upstash/redis`) as the shared token store, for Vercel, Netlify,
 * Deno Deploy and any runtime without TCP. Instances sharing one database mint once between
 * them (atomic `SET … PX … NX` minting lock). Values are stored as `redisKV` stores them, so
 * TCP and HTTP clients of one database share the record. Keys go under `prefix` (default none).
 */
export function upstashKV(redis: Redis, options?: { prefix?: string }): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;

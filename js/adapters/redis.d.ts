import type { KVNamespaceLike } from './index.js';

/** The commands the adapter sends: a node-redis client (`sendCommand`) or an ioredis client (`call`). */
export type RedisClientLike =
  | { sendCommand(args: string[]): Promise<unknown> }
  | { call(command: string, ...args: (string | number)[]): Promise<unknown> };

/**
 * Redis as the shared token store. Processes sharing one Redis mint once between them
 * (atomic `SET … PX … NX` minting lock).
 */
export function redisKV(client: RedisClientLike, options?: { prefix?: string }): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;

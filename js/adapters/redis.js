// Redis as the shared token store, for `redis` (node-redis) or `ioredis` clients.
// Guarantee: processes sharing one Redis mint once between them (an atomic SET NX minting lock).
import { redisCommands } from './redis-commands.js';

/** Wraps a connected node-redis or ioredis client in the KVNamespace shape (+ `putIfAbsent`). */
export function redisKV(client, { prefix = '' } = {}) {
  if (client === null || typeof client !== 'object') throw new TypeError('redisKV: a connected Redis client is required');
  // raw commands work the same on both clients
  const cmd =
    typeof client.call === 'function'
      ? (...args) => client.call(...args)
      : typeof client.sendCommand === 'function'
        ? (...args) => client.sendCommand(args.map(String))
        : null;
  if (cmd === null) throw new TypeError('redisKV: expected a node-redis or ioredis client');
  return redisCommands(cmd, prefix);
}

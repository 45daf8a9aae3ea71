// Redis as the shared token store, for `redis` (node-redis) or `ioredis` clients, single-node
// or cluster (node-redis `createClient` / `createCluster`, ioredis `Redis` / `Cluster`).
// Guarantee: processes sharing one Redis mint once between them (an atomic SET NX minting lock).
import { redisCommands } from './redis-commands.js';

/** Wraps a connected node-redis or ioredis client in the KVNamespace shape (+ `putIfAbsent`). */
export function redisKV(client, { prefix = '' } = {}) {
  if (client === null || typeof client !== 'object') throw new TypeError('redisKV: a connected Redis client is required');
  // raw commands, each with its key second (GET, SET, DEL) or fourth (EVAL), so a cluster
  // routes it by that key
  const cmd =
    typeof client.call === 'function' // ioredis, Redis or Cluster
      ? (...args) => client.call(...args)
      : typeof client.sendCommand === 'function' && typeof client.nodeClient === 'function' // node-redis cluster
        ? (...args) => client.sendCommand(args[args[0] === 'EVAL' ? 3 : 1], args[0] === 'GET', args.map(String))
        : typeof client.sendCommand === 'function' // node-redis client
          ? (...args) => client.sendCommand(args.map(String))
          : null;
  if (cmd === null) throw new TypeError('redisKV: expected a node-redis or ioredis client');
  return redisCommands(cmd, prefix);
}

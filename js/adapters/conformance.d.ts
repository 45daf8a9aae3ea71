import type { KVNamespaceLike } from './index.js';

/** A rule of the store contract that a store broke (`rule` names it). */
export interface StoreContractError extends Error {
  readonly name: 'StoreContractError';
  readonly rule: string;
}

/**
 * Checks a live store against the contract autopay-auth needs for one mint per fleet: values
 * byte for byte, delete, TTLs to the second (stores with `minExpirationTtl: 1`), and for a store
 * that locks: `claimers` (50) concurrent `putIfAbsent` of one lock with exactly one winner, a
 * fenced release (`deleteIf` with another owner's id deletes nothing), lock expiry, and
 * compare-and-delete of a record. Resolves with the rules kept; rejects with a
 * `StoreContractError` at the first rule broken. Writes keys under `prefix` (random unless given).
 */
export function checkStore(kv: KVNamespaceLike, options?: { prefix?: string; claimers?: number }): Promise<string[]>;

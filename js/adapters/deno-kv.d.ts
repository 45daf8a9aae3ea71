import type { KVNamespaceLike } from './index.js';

/** The part of `Deno.Kv` the adapter uses. */
export interface DenoKvLike {
  get(key: unknown[]): Promise<{ value: unknown; versionstamp: string | null; key: unknown[] }>;
  set(key: unknown[], value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  delete(key: unknown[]): Promise<void>;
  atomic(): {
    check(...entries: { key: unknown[]; versionstamp: string | null }[]): any;
  };
}

/**
 * Deno KV as the shared token store. Processes sharing one Deno KV mint once between them
 * (atomic check-and-set minting lock). Keys live under `prefix` (default `["autopay-auth"]`).
 */
export function denoKV(kv: DenoKvLike, options?: { prefix?: unknown[] }): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;

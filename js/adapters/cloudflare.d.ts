import type { KVNamespaceLike } from './index.js';

/** The shape of a Durable Object namespace binding that `durableObjectKV` uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: any): any;
}

/**
 * The Durable Object class to export from your Worker's main module (`export { AutopayAuthStore }
 * from 'autopay-auth/cloudflare'`) and bind (`class_name = "AutopayAuthStore"`): it holds the
 * token record, the fleet state and the minting lock for every isolate bound to it.
 */
export declare class AutopayAuthStore {
  constructor(ctx: unknown, env: unknown);
  kvGet(key: string): Promise<string | null>;
  kvPut(key: string, value: string, ttlMs: number): Promise<void>;
  kvDelete(key: string): Promise<void>;
  kvPutIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  kvDeleteIf(key: string, expected: string): Promise<boolean>;
  alarm(): Promise<void>;
}

/** The store over that object: `kv: durableObjectKV(env.AUTOPAY_STORE)` — one mint for every isolate of every Worker bound to it. */
export function durableObjectKV(namespace: DurableObjectNamespaceLike, options?: { name?: string }): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;

import type { KVNamespaceLike } from './index.js';

/** node-postgres (`pg`): a `Pool` or a `Client` — what the adapter calls of it. */
export interface PgClientLike {
  query(text: string, params?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

/** postgres.js: the `sql` that `postgres(url)` returns — what the adapter calls of it. */
export interface PostgresJsLike {
  (...args: any[]): any;
  unsafe(text: string, params?: any[]): Promise<any[] & { count?: number }>;
}

export interface PostgresKVOptions {
  /** The table (`schema.table` allowed). Default `autopay_auth_kv`. */
  table?: string;
  /** Prepended to every key. Default none. */
  prefix?: string;
  /** Create the table on first use (`CREATE TABLE IF NOT EXISTS`; needs the privilege). Default false: make it in a migration (`postgresTableSql()`). */
  createTable?: boolean;
}

/**
 * A Postgres table as the shared token store, over node-postgres or postgres.js. Processes
 * sharing the table mint once between them (`INSERT … ON CONFLICT … WHERE` expired as the
 * minting lock, `DELETE … WHERE value =` as its fenced release); expiry by the database's clock.
 */
export function postgresKV(client: PgClientLike | PostgresJsLike, options?: PostgresKVOptions): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;

/** The `CREATE TABLE IF NOT EXISTS` for `table` (default `autopay_auth_kv`). */
export function postgresTableSql(table?: string): string;

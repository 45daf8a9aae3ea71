import pg from 'pg';
import { AutopayAuth } from 'autopay-auth';
import { postgresKV, postgresTableSql } from 'autopay-auth/postgres';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
// once, in a migration: CREATE TABLE IF NOT EXISTS autopay_auth_kv (key text PRIMARY KEY,
//   value text NOT NULL, expires_at timestamptz NOT NULL) — what postgresTableSql() returns
await pool.query(postgresTableSql());
const auth = new AutopayAuth({ clientId, clientSecret, kv: postgresKV(pool) }); // postgres.js: postgresKV(sql)

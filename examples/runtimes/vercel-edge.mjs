// A Vercel Edge Function: the package's `edge-light` entry, whose wasm the platform's bundler
// imports as a module at build time. One client per isolate, made on first use; a background
// refresh is handed to `waitUntil` from `@vercel/functions`, so it outlives the request (without
// it the platform may stop the isolate's work when the answer is sent, and the refresh never lands).
// Fleet-wide: with Upstash Redis connected (Vercel's storage integration sets KV_REST_API_URL
// and KV_REST_API_TOKEN; Upstash's own names work too), every isolate shares one token and one
// minting lock. Without it each isolate mints its own token, once per token lifetime.
import { AutopayAuth } from 'autopay-auth';
import { upstashKV } from 'autopay-auth/upstash';
import { Redis } from '@upstash/redis';
import { waitUntil } from '@vercel/functions';

export const config = { runtime: 'edge' };

function sharedStore(env) {
  const url = env.UPSTASH_REDIS_REST_URL ?? env.KV_REST_API_URL;
  const token = env.UPSTASH_REDIS_REST_TOKEN ?? env.KV_REST_API_TOKEN;
  return url && token ? upstashKV(new Redis({ url, token })) : undefined;
}

let auth;
export default async function handler() {
  auth ??= new AutopayAuth({
    clientId: process.env.AUTOPAY_CLIENT_ID,
    clientSecret: process.env.AUTOPAY_CLIENT_SECRET,
    tokenUrl: process.env.AUTOPAY_TOKEN_URL,
    kv: sharedStore(process.env),
    waitUntil,
  });
  const { source, expiresAt } = await auth.getTokenInfo();
  return Response.json({ source, expiresAt });
}

// One autopay-auth client per server process (Node runtime) or per isolate (edge runtime),
// made on first use: `next build` evaluates route modules without the secrets.
// Fleet-wide: with Upstash Redis connected (Vercel's storage integration sets KV_REST_API_URL
// and KV_REST_API_TOKEN; Upstash's own names work too), every process and isolate shares one
// token and one minting lock. Without it each one mints its own token, once per token lifetime.
import { AutopayAuth } from 'autopay-auth';
import { upstashKV } from 'autopay-auth/upstash';
import { Redis } from '@upstash/redis';
import { after } from 'next/server';

function sharedStore(env) {
  const url = env.UPSTASH_REDIS_REST_URL ?? env.KV_REST_API_URL;
  const token = env.UPSTASH_REDIS_REST_TOKEN ?? env.KV_REST_API_TOKEN;
  return url && token ? upstashKV(new Redis({ url, token })) : undefined;
}

let auth;
export function autopay() {
  auth ??= new AutopayAuth({
    clientId: process.env.AUTOPAY_CLIENT_ID,
    clientSecret: process.env.AUTOPAY_CLIENT_SECRET,
    tokenUrl: process.env.AUTOPAY_TOKEN_URL, // unset: Autopay's own endpoint
    apiBaseUrl: process.env.AUTOPAY_API_BASE,
    kv: sharedStore(process.env),
    // a background refresh outlives the request that started it
    waitUntil: (refresh) => after(refresh),
  });
  return auth;
}

// A Netlify Edge Function (Deno): `autopay-auth/standalone` carries its wasm inside the JS,
// because Netlify's bundler vendors npm packages into one file and would leave a `.wasm` behind.
// One client per isolate, made on first use; a background refresh outlives the request.
// Fleet-wide: with Upstash Redis connected (Netlify's Upstash integration sets
// UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN), every isolate shares one token and one
// minting lock. Without it each isolate mints its own token, once per token lifetime.
import { AutopayAuth } from 'autopay-auth/standalone';
import { upstashKV } from 'autopay-auth/upstash';
import { Redis } from '@upstash/redis';

function sharedStore(env) {
  const url = env.get('UPSTASH_REDIS_REST_URL');
  const token = env.get('UPSTASH_REDIS_REST_TOKEN');
  return url && token ? upstashKV(new Redis({ url, token })) : undefined;
}

let auth;
export default async (request, context) => {
  auth ??= new AutopayAuth({
    clientId: Netlify.env.get('AUTOPAY_CLIENT_ID'),
    clientSecret: Netlify.env.get('AUTOPAY_CLIENT_SECRET'),
    tokenUrl: Netlify.env.get('AUTOPAY_TOKEN_URL'), // unset: Autopay's own endpoint
    kv: sharedStore(Netlify.env),
  });
  const { source, expiresAt } = await auth.getTokenInfo({ waitUntil: context.waitUntil });
  return Response.json({ source, expiresAt });
};

export const config = { path: '/api/token' };

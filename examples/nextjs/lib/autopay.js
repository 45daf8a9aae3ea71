// One autopay-auth client per server process (Node runtime) or per isolate (edge runtime),
// made on first use: `next build` evaluates route modules without the secrets.
import { AutopayAuth } from 'autopay-auth';
import { after } from 'next/server';

let auth;
export function autopay() {
  auth ??= new AutopayAuth({
    clientId: process.env.AUTOPAY_CLIENT_ID,
    clientSecret: process.env.AUTOPAY_CLIENT_SECRET,
    tokenUrl: process.env.AUTOPAY_TOKEN_URL, // unset: Autopay's own endpoint
    apiBaseUrl: process.env.AUTOPAY_API_BASE,
    // a background refresh outlives the request that started it
    waitUntil: (refresh) => after(refresh),
  });
  return auth;
}

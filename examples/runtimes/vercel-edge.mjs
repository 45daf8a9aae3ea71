// A Vercel Edge Function: the package's `edge-light` entry, whose wasm the platform's bundler
// imports as a module at build time. One client per isolate, made on first use.
import { AutopayAuth } from 'autopay-auth';

export const config = { runtime: 'edge' };

let auth;
export default async function handler() {
  auth ??= new AutopayAuth({
    clientId: process.env.AUTOPAY_CLIENT_ID,
    clientSecret: process.env.AUTOPAY_CLIENT_SECRET,
    tokenUrl: process.env.AUTOPAY_TOKEN_URL,
  });
  const { source, expiresAt } = await auth.getTokenInfo();
  return Response.json({ source, expiresAt });
}

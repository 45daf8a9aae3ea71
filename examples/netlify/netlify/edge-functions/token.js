// A Netlify Edge Function (Deno): `autopay-auth/standalone` carries its wasm inside the JS,
// because Netlify's bundler vendors npm packages into one file and would leave a `.wasm` behind.
// One client per isolate, made on first use; a background refresh outlives the request.
import { AutopayAuth } from 'autopay-auth/standalone';

let auth;
export default async (request, context) => {
  auth ??= new AutopayAuth({
    clientId: Netlify.env.get('AUTOPAY_CLIENT_ID'),
    clientSecret: Netlify.env.get('AUTOPAY_CLIENT_SECRET'),
    tokenUrl: Netlify.env.get('AUTOPAY_TOKEN_URL'), // unset: Autopay's own endpoint
  });
  const { source, expiresAt } = await auth.getTokenInfo({ waitUntil: context.waitUntil });
  return Response.json({ source, expiresAt });
};

export const config = { path: '/api/token' };

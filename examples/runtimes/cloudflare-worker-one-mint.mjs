// A Cloudflare Worker of your own, on the npm package, with one mint for every isolate: the
// token, the fleet state and the minting lock are kept by the package's Durable Object. Bind it
// in wrangler.toml (the class is exported from this module):
//
//   [[durable_objects.bindings]]
//   name = "AUTOPAY_STORE"
//   class_name = "AutopayAuthStore"
//
//   [[migrations]]
//   tag = "v1"
//   new_sqlite_classes = ["AutopayAuthStore"]
import { AutopayAuth } from 'autopay-auth';
import { durableObjectKV } from 'autopay-auth/cloudflare';
import { waitUntil } from 'cloudflare:workers';

export { AutopayAuthStore } from 'autopay-auth/cloudflare';

let auth;
export default {
  async fetch(request, env) {
    auth ??= new AutopayAuth({
      clientId: env.AUTOPAY_CLIENT_ID,
      clientSecret: env.AUTOPAY_CLIENT_SECRET,
      tokenUrl: env.AUTOPAY_TOKEN_URL, // unset: Autopay's own endpoint
      kv: durableObjectKV(env.AUTOPAY_STORE),
      waitUntil,
    });
    // your code: here, the token's source and expiry (never hand the token to just anyone)
    const { source, expiresAt } = await auth.getTokenInfo();
    return Response.json({ source, expiresAt });
  },
};

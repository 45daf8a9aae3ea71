import { createClient } from 'redis';
import { AutopayAuth } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';

// every instance of the fleet is given the same DPoP key (a secret, like the client secret):
// the one token the fleet mints is bound to it, and every instance can prove it holds the key
const redis = await createClient({ url: process.env.REDIS_URL }).connect();
const auth = new AutopayAuth({
  tokenUrl: 'https://your-tenant.auth0.com/oauth/token',
  tokenRequest: 'form',
  audience: 'https://api.example.com',
  clientId: process.env.CLIENT_ID!,
  clientSecret: process.env.CLIENT_SECRET!,
  dpopKey: process.env.DPOP_KEY!, // a P-256 PKCS#8 PEM (or a private JWK)
  apiBaseUrl: 'https://api.example.com',
  kv: redisKV(redis, { prefix: 'myapp:' }),
});

// auth.fetch sends `Authorization: DPoP …` with a fresh proof, and answers a nonce challenge once
const orders = await auth.fetch('/v1/orders');

// your own HTTP client: fresh headers per request (a proof fits one method and URL, once)
const url = 'https://api.example.com/v1/refunds';
const res = await fetch(url, { method: 'POST', headers: await auth.authorize('POST', url), body: '{}' });
if (res.status === 401 && auth.learnNonce(url, res.headers.get('dpop-nonce'))) {
  await fetch(url, { method: 'POST', headers: await auth.authorize('POST', url), body: '{}' });
}
console.log(orders.status);

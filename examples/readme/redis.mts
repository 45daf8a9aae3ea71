import { createClient } from 'redis';
import { AutopayAuth } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';
// without an 'error' listener node-redis throws on a lost connection and ends the process; with
// one, the client reconnects, and autopay-auth counts the failed calls and keeps serving
const redis = await createClient({ url: process.env.AUTOPAY_REDIS_URL })
  .on('error', (e) => console.warn('redis:', e.message))
  .connect();
// the same prefix as the Rust services' `RedisStore::open(url)?.with_prefix("myapp:")`: one
// record, one mint for a fleet of both
export const auth = new AutopayAuth({
  clientId: process.env.AUTOPAY_CLIENT_ID!,
  clientSecret: process.env.AUTOPAY_CLIENT_SECRET!,
  tokenUrl: process.env.AUTOPAY_TOKEN_URL, // unset: Autopay's own endpoint
  kv: redisKV(redis, { prefix: 'myapp:' }),
});

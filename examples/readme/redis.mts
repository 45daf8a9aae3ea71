import { createClient } from 'redis';
import { AutopayAuth } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';
// without an 'error' listener node-redis throws on a lost connection and ends the process; with
// one, the client reconnects, and autopay-auth counts the failed calls and keeps serving
const redis = await createClient({ url: process.env.REDIS_URL })
  .on('error', (e) => console.warn('redis:', e.message))
  .connect();
const auth = new AutopayAuth({ clientId, clientSecret, kv: redisKV(redis, { prefix: 'myapp:' }) });

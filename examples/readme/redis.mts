import { createClient } from 'redis';
import { AutopayAuth } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';
const redis = await createClient({ url: process.env.REDIS_URL }).connect();
const auth = new AutopayAuth({ clientId, clientSecret, kv: redisKV(redis, { prefix: 'myapp:' }) });

import { Redis } from '@upstash/redis';
import { AutopayAuth } from 'autopay-auth';
import { upstashKV } from 'autopay-auth/upstash';
// Vercel's storage integration names them KV_REST_API_URL / KV_REST_API_TOKEN
const redis = new Redis({ url: process.env.UPSTASH_REDIS_REST_URL!, token: process.env.UPSTASH_REDIS_REST_TOKEN! });
const auth = new AutopayAuth({ clientId, clientSecret, kv: upstashKV(redis) });

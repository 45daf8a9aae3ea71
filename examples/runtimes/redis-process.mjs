// One process sharing Redis: waits for the common start instant, then 25 concurrent cold calls.
import { AutopayAuth } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';

const [tokenUrl, redisUrl, startAt, redisModule] = process.argv.slice(2);
const { createClient } = await import(redisModule);
const client = await createClient({ url: redisUrl }).connect();
const auth = new AutopayAuth({ clientId: 'runtime-client', clientSecret: 'runtime-secret', tokenUrl, kv: redisKV(client) });
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const tokens = await Promise.all(Array.from({ length: 25 }, () => auth.getToken()));
console.log(JSON.stringify({ tokens: [...new Set(tokens)], stats: auth.stats() }));
await client.quit();

// One Deno process sharing a Deno KV database: waits for the common start instant, then 25
// concurrent cold calls.
import { AutopayAuth } from 'autopay-auth';
import { denoKV } from 'autopay-auth/deno-kv';

const [tokenUrl, path, startAt] = Deno.args;
const kv = await Deno.openKv(path);
const auth = new AutopayAuth({ clientId: 'runtime-client', clientSecret: 'runtime-secret', tokenUrl, kv: denoKV(kv) });
const late = Date.now() - Number(startAt);
await new Promise((r) => setTimeout(r, Math.max(0, -late)));
const tokens = await Promise.all(Array.from({ length: 25 }, () => auth.getToken()));
console.log(JSON.stringify({ tokens: [...new Set(tokens)], stats: auth.stats(), late }));
kv.close();

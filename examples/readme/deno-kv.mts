import { AutopayAuth } from 'autopay-auth';
import { denoKV } from 'autopay-auth/deno-kv';
const auth = new AutopayAuth({ clientId, clientSecret, kv: denoKV(await Deno.openKv()) }); // deno run --unstable-kv

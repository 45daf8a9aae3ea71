import { AutopayAuth, MemoryKV } from 'autopay-auth';
const auth = new AutopayAuth({ clientId, clientSecret, kv: new MemoryKV() });
const { accessToken, source } = await auth.getTokenInfo(); // "network", then "memory"

// A small program that uses the built package against the Autopay emulator: each call's
// `source`, and how many tokens the emulator has minted.
//   node examples/node-demo.mjs     (after `npm run build`; starts its own emulator)
import { startEmulator } from '../tests/emulator/server.mjs';
import { AutopayAuth, MemoryKV } from '../pkg/node.mjs';

const emu = await startEmulator({ clientId: 'demo-client', clientSecret: 'demo-secret' });
console.log(`Autopay emulator on ${emu.origin}\n`);
const kv = new MemoryKV();
const options = { clientId: 'demo-client', clientSecret: 'demo-secret', tokenUrl: emu.tokenUrl, apiBaseUrl: emu.origin, kv };

const show = (who, info) =>
  console.log(`${who.padEnd(34)} source=${info.source.padEnd(8)} token=${info.accessToken.slice(0, 8)}…  minted so far: ${emu.stats().minted}`);

const auth = new AutopayAuth(options);
for (let i = 1; i <= 3; i++) show(`instance A, call ${i}`, await auth.getTokenInfo());
const other = new AutopayAuth(options);
show('instance B (same KV), call 1', await other.getTokenInfo());
show('instance B (same KV), call 2', await other.getTokenInfo());

const burst = new AutopayAuth({ ...options, kv: new MemoryKV() });
await Promise.all(Array.from({ length: 100 }, () => burst.getToken()));
console.log(`instance C: 100 concurrent cold calls -> minted so far: ${emu.stats().minted} (one more)`);

const res = await auth.fetch('/customer_club/members?limit=1');
console.log(`\nauth.fetch('/customer_club/members?limit=1') -> HTTP ${res.status}`, await res.json());
console.log('\nstats of instance A:', auth.stats());
await emu.close();

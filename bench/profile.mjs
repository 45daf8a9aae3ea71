// Ad hoc (not part of npm run bench): where each Worker's isolate spends its CPU on one route
// under load — a V8 CPU profile through workerd's inspector (Miniflare `inspectorPort`), both
// Workers as deployed in one workerd; prints the top functions by self time per request and
// writes the profiles to target/profile-<worker>.cpuprofile (open them in Chrome's DevTools).
//   node bench/profile.mjs [path]    (default: a proxied GET; '/token' for the token route)
import autocannon from 'autocannon';
import { Miniflare } from 'miniflare';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulator } from '../tests/emulator/server.mjs';
import { benchHeaders as headers, benchWorker, root } from './common.mjs';

const INSPECTOR = Number(process.env.BENCH_INSPECTOR_PORT ?? 9339);
const emu = await startEmulator({ clientId: 'bench', clientSecret: 'bench-secret' });
const list = [benchWorker('ours', 'ours', emu), benchWorker('js', 'js', emu)];
const mf = new Miniflare({ host: '127.0.0.1', port: 0, cf: false, inspectorPort: INSPECTOR, handleRuntimeStdio() {}, workers: list });
await mf.ready;
const urls = Object.fromEntries(await Promise.all(list.map(async (w) => [w.name, await mf.unsafeGetDirectURL(w.name)])));
const path = process.argv[2] ?? '/customer_club/members?limit=1';
for (const u of Object.values(urls)) await autocannon({ url: new URL(path, u).href, connections: 16, duration: 2, headers });
const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR}/json`)).json();
async function profile(name) {
  const t = targets.find((x) => x.id === `core:user:${name}`);
  const ws = new WebSocket(t.webSocketDebuggerUrl);
  await new Promise((r) => ws.addEventListener('open', r));
  let id = 0; const pending = new Map();
  ws.addEventListener('message', (e) => { const m = JSON.parse(e.data); if (pending.has(m.id)) { pending.get(m.id)(m.result); pending.delete(m.id); } });
  const send = (method, params = {}) => new Promise((r) => { pending.set(++id, r); ws.send(JSON.stringify({ id, method, params })); });
  await send('Profiler.enable'); await send('Profiler.setSamplingInterval', { interval: 50 }); await send('Profiler.start');
  const r = await autocannon({ url: new URL(path, urls[name]).href, connections: 16, duration: 4, headers });
  const { profile } = await send('Profiler.stop');
  ws.close();
  writeFileSync(join(root, 'target', `profile-${name}.cpuprofile`), JSON.stringify(profile));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map(); let total = 0;
  for (let i = 0; i < profile.samples.length; i++) { const n = byId.get(profile.samples[i]); const f = n.callFrame; const k = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`; self.set(k, (self.get(k) ?? 0) + profile.timeDeltas[i]); total += profile.timeDeltas[i]; }
  console.log(`\n== ${name}: ${r.requests.total} requests, ${(total / 1000).toFixed(0)} ms sampled; per request: ${(total / r.requests.total).toFixed(1)} µs`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / r.requests.total).toFixed(2).padStart(7), 'µs/req', k);
}
await profile('ours');
await profile('js');
await mf.dispose();
await emu.close();

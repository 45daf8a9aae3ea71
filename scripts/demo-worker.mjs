// The main job: the Autopay emulator, then the Worker under `wrangler dev` (local workerd, local
// KV and Durable Object state, secrets pointing at the emulator); a short tour showing one mint
// and then cache hits; then it keeps serving until Ctrl-C (`--once`: exit). Ports: WORKER_PORT
// (8787) and EMULATOR_PORT (8788). The demo runs from its own copy of wrangler.toml under
// .wrangler/demo/, with its own .dev.vars beside it, so a .dev.vars of yours is never touched.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../tests/emulator/server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORKER_PORT = Number(process.env.WORKER_PORT ?? 8787);
const EMULATOR_PORT = Number(process.env.EMULATOR_PORT ?? 8788);
const KEY = 'local-demo-caller-key-0123456789';
const once = process.argv.includes('--once');

/** Exits with one clear line when `port` on 127.0.0.1 is taken. */
async function ensureFree(port, variable) {
  const free = await new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
  if (!free) {
    console.error(`autopay-auth demo: port ${port} on 127.0.0.1 is in use; set ${variable} to a free port (for example ${variable}=${port + 100} npm run demo)`);
    process.exit(1);
  }
}
await ensureFree(WORKER_PORT, 'WORKER_PORT');
await ensureFree(EMULATOR_PORT, 'EMULATOR_PORT');

const emu = await startEmulator({ port: EMULATOR_PORT, clientId: 'demo-client', clientSecret: 'demo-secret' });
// The demo's own wrangler config (the project's, pointing at the built Worker, without its build
// step: the Worker was just built) and, beside it, its own .dev.vars.
const demoDir = join(root, '.wrangler', 'demo');
mkdirSync(demoDir, { recursive: true });
const config = readFileSync(join(root, 'wrangler.toml'), 'utf8')
  .replace(/^main = .*$/m, `main = ${JSON.stringify(join(root, 'src', 'cloudflare', 'front.js'))}`)
  .replace(/^\[build\][^[]*/m, '');
writeFileSync(join(demoDir, 'wrangler.toml'), config);
writeFileSync(
  join(demoDir, '.dev.vars'),
  [
    '# Local secrets of `npm run demo` (written by scripts/demo-worker.mjs).',
    'AUTOPAY_CLIENT_ID=demo-client',
    'AUTOPAY_CLIENT_SECRET=demo-secret',
    `PROXY_API_KEYS=${KEY}`,
    `AUTOPAY_TOKEN_URL=${emu.tokenUrl}`,
    `AUTOPAY_API_BASE=${emu.origin}`,
    '',
  ].join('\n'),
);
// The emulator starts empty, so the Worker's local KV and Durable Object state start empty too.
const state = join(root, '.wrangler', 'demo-state');
rmSync(state, { recursive: true, force: true });
console.log(`Autopay emulator on ${emu.origin}; starting the Worker (wrangler dev, local mode)…`);

const wrangler = spawn(
  join(root, 'node_modules', '.bin', 'wrangler'),
  ['dev', '--config', join(demoDir, 'wrangler.toml'), '--local', '--ip', '127.0.0.1', '--port', String(WORKER_PORT), '--persist-to', state, '--show-interactive-dev-session=false'],
  {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  },
);
let log = '';
wrangler.stdout.on('data', (d) => (log += d));
wrangler.stderr.on('data', (d) => (log += d));
const stop = async (code) => {
  wrangler.kill('SIGTERM');
  await emu.close();
  process.exit(code);
};
wrangler.on('exit', (code) => {
  if (!stopping) {
    console.error(log.slice(-4000));
    console.error(`wrangler dev exited (${code})`);
    process.exit(1);
  }
});
let stopping = false;
process.on('SIGINT', () => ((stopping = true), stop(0)));

const base = `http://127.0.0.1:${WORKER_PORT}`;
const deadline = Date.now() + 240_000; // the first start builds the Worker
for (;;) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {}
  if (Date.now() > deadline) {
    console.error(log.slice(-4000));
    stopping = true;
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 500));
}

const headers = { authorization: `Bearer ${KEY}` };
console.log(`\nWorker ready on ${base}\n`);
for (let i = 1; i <= 3; i++) {
  const b = await (await fetch(`${base}/token`, { headers })).json();
  console.log(`GET /token #${i}: token ${b.access_token.slice(0, 8)}… expires_in ${b.expires_in}s   tokens minted by Autopay so far: ${emu.stats().minted}`);
}
const burst = await Promise.all(Array.from({ length: 50 }, () => fetch(`${base}/token`, { headers }).then((r) => r.json())));
console.log(`50 concurrent GET /token: ${new Set(burst.map((b) => b.access_token)).size} distinct token(s); minted so far: ${emu.stats().minted}`);
const proxied = await fetch(`${base}/customer_club/members?limit=1`, { headers: { ...headers, cookie: 'session=dropped' } });
console.log(`GET /customer_club/members?limit=1 (proxied): HTTP ${proxied.status}`, await proxied.json());
console.log('GET /healthz (with the caller key):', await (await fetch(`${base}/healthz`, { headers: { authorization: `Bearer ${KEY}` } })).json());
console.log(`\nTry it:\n  curl -H 'Authorization: Bearer ${KEY}' ${base}/token\n  curl -H 'Authorization: Bearer ${KEY}' '${base}/customer_club/members?limit=1'\n  curl -H 'Authorization: Bearer ${KEY}' ${base}/healthz\n`);
if (once) {
  stopping = true;
  await stop(0);
}
console.log('Serving until Ctrl-C.');

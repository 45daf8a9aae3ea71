// Benchmark (not a test): autopay-auth beside the token clients users would otherwise pick, each
// at its pinned version and used the way its documentation recommends for client credentials,
// against the Autopay emulator (compat mode: form bodies and client_secret_basic accepted):
// - storm: 1,000 concurrent calls on a cold client → tokens minted;
// - steady: 5,000 calls spread over 10 s with 4-second tokens → tokens minted, tokens handed out
//   already expired, and with under 100 ms left (the emulator knows each token's expiry);
// - cold start: import, construct and first token in a fresh process (bench/cold-start.mjs),
//   median of 3;
// - install size: the package and its dependencies as npm installs them;
// - browser payload: an esbuild browser bundle of the client, minified, gzip (autopay-auth: its
//   browser entry, glue and .wasm).
//   node bench/peers.mjs            (after `npm run build`)
import { join, dirname } from 'node:path';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const execFile = promisify(execFileCb);
import { startEmulator } from '../tests/emulator/server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ID = 'bench';
const SECRET = 'bench-secret';
const AUDIENCE = 'https://api.autopay.io';
const STORM = Number(process.env.BENCH_STORM ?? 1_000);
const STEADY_CALLS = Number(process.env.BENCH_STEADY_CALLS ?? 5_000);
const STEADY_MS = Number(process.env.BENCH_STEADY_MS ?? 10_000);

const emu = await startEmulator({ clientId: ID, clientSecret: SECRET, compat: true });
const version = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

const { AutopayAuth } = await import(join(root, 'pkg', 'node.mjs'));
const { OAuth2Client, OAuth2Fetch } = await import('@badgateway/oauth2-client');
const { ClientCredentials } = await import('simple-oauth2');
const openid = await import('openid-client');
const oauth = await import('oauth4webapi');
const { TokenProvider } = await import('auth0');

/** Each peer: its name for bench/cold-start.mjs and npm, a factory making a fresh client that
 * returns `() => Promise<access token>`. */
const peers = [
  ['autopay-auth', 'local build', () => {
    const auth = new AutopayAuth({ clientId: ID, clientSecret: SECRET, tokenUrl: emu.tokenUrl, logger: null });
    return () => auth.getToken();
  }],
  ['hand-written: Map + shared promise', '—', () => {
    let hit = null;
    let inflight = null;
    return async () => {
      if (hit && hit.expiresAt - 1_000 > Date.now()) return hit.token;
      inflight ??= fetch(emu.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: ID, client_secret: SECRET, audience: AUDIENCE, grant_type: 'client_credentials' }),
      })
        .then((r) => r.json())
        .then((b) => ((hit = { token: b.access_token, expiresAt: Date.now() + b.expires_in * 1000 }), (inflight = null), b.access_token));
      return inflight;
    };
  }],
  ['@badgateway/oauth2-client (OAuth2Fetch)', version('@badgateway/oauth2-client'), () => {
    const client = new OAuth2Client({ clientId: ID, clientSecret: SECRET, tokenEndpoint: emu.tokenUrl });
    const f = new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials({ extraParams: { audience: AUDIENCE } }), scheduleRefresh: false });
    return async () => (await f.getToken()).accessToken;
  }],
  ['simple-oauth2 (getToken, expired() check)', version('simple-oauth2'), () => {
    const so = new ClientCredentials({ client: { id: ID, secret: SECRET }, auth: { tokenHost: emu.origin, tokenPath: '/oauth/token' } });
    let token = null;
    return async () => {
      if (!token || token.expired(1)) token = await so.getToken({ audience: AUDIENCE });
      return token.token.access_token;
    };
  }],
  ['openid-client (clientCredentialsGrant)', version('openid-client'), () => {
    const config = new openid.Configuration({ issuer: emu.origin, token_endpoint: emu.tokenUrl }, ID, SECRET);
    openid.allowInsecureRequests(config);
    return async () => (await openid.clientCredentialsGrant(config, { audience: AUDIENCE })).access_token;
  }],
  ['oauth4webapi (clientCredentialsGrantRequest)', version('oauth4webapi'), () => {
    const as = { issuer: emu.origin, token_endpoint: emu.tokenUrl };
    const client = { client_id: ID };
    return async () => {
      const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(SECRET), new URLSearchParams({ audience: AUDIENCE }), {
        [oauth.allowInsecureRequests]: true,
      });
      return (await oauth.processClientCredentialsResponse(as, client, response)).access_token;
    };
  }],
  ['auth0 (TokenProvider)', version('auth0'), () => {
    const tenant = 'https://tenant.bench';
    const provider = new TokenProvider({
      domain: 'tenant.bench',
      clientId: ID,
      clientSecret: SECRET,
      audience: AUDIENCE,
      fetch: (url, init) => fetch(String(url).replace(tenant, emu.origin), init), // the emulator speaks http
    });
    return () => provider.getAccessToken();
  }],
];

async function storm(make) {
  await emu.post('/__emulator/reset');
  const get = make();
  const tokens = await Promise.all(Array.from({ length: STORM }, () => get()));
  return { mints: emu.stats().minted, distinct: new Set(tokens).size };
}

async function steady(make) {
  await emu.post('/__emulator/reset');
  emu.setExpiresIn(4);
  const get = make();
  const started = Date.now();
  const results = [];
  for (let i = 0; i < STEADY_CALLS; i++) {
    const due = started + (i * STEADY_MS) / STEADY_CALLS;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    results.push(get().then((token) => {
      const left = (emu.state.tokens.get(token) ?? 0) - Date.now();
      return left;
    }, () => null));
  }
  const lefts = await Promise.all(results);
  emu.setExpiresIn(86_400);
  return {
    mints: emu.stats().minted,
    expired: lefts.filter((l) => l !== null && l <= 0).length,
    under100: lefts.filter((l) => l !== null && l > 0 && l < 100).length,
    failed: lefts.filter((l) => l === null).length,
  };
}

/** The cold-start name of each client (bench/cold-start.mjs) and its npm package. */
const coldName = {
  'autopay-auth': ['autopay-auth', null],
  'hand-written: Map + shared promise': ['hand-written', null],
  '@badgateway/oauth2-client (OAuth2Fetch)': ['@badgateway/oauth2-client', '@badgateway/oauth2-client'],
  'simple-oauth2 (getToken, expired() check)': ['simple-oauth2', 'simple-oauth2'],
  'openid-client (clientCredentialsGrant)': ['openid-client', 'openid-client'],
  'oauth4webapi (clientCredentialsGrantRequest)': ['oauth4webapi', 'oauth4webapi'],
  'auth0 (TokenProvider)': ['auth0', 'auth0'],
};

async function coldStart(name) {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    await emu.post('/__emulator/reset');
    const { stdout } = await execFile(process.execPath, [join(root, 'bench', 'cold-start.mjs'), name, emu.tokenUrl, join(root, 'pkg')], { cwd: root });
    runs.push(JSON.parse(stdout.trim().split('\n').pop()));
  }
  return runs.sort((a, b) => a.total - b.total)[1];
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
function dirSize(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirSize(p) : e.isFile() ? statSync(p).size : 0;
  }
  return total;
}

/** What `npm install` puts on disk for the package (from the local cache where it can). */
function installSize(pkgName, v) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-install-'));
  writeFileSync(join(dir, 'package.json'), '{"private":true}');
  const spec = pkgName === null ? join(root, 'dist', readdirSync(join(root, 'dist')).find((f) => f.endsWith('.tgz'))) : `${pkgName}@${v}`;
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', spec], { cwd: dir, stdio: 'ignore' });
  return dirSize(join(dir, 'node_modules'));
}

/** gzip of a minified esbuild browser bundle importing `code`. */
function browserPayload(code) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-bundle-'));
  writeFileSync(join(dir, 'entry.mjs'), code);
  execFileSync(join(root, 'node_modules', '.bin', 'esbuild'), [join(dir, 'entry.mjs'), '--bundle', '--minify', '--format=esm', '--platform=browser', `--outfile=${join(dir, 'out.js')}`, '--log-level=error', '--external:node:*'], { cwd: root, nodePaths: [join(root, 'node_modules')], env: { ...process.env, NODE_PATH: join(root, 'node_modules') } });
  return gzipSync(readFileSync(join(dir, 'out.js')), { level: 9 }).length;
}

const bundles = {
  'autopay-auth': null, // measured from pkg/: browser.mjs + api.js + glue + memory-kv + .wasm
  '@badgateway/oauth2-client': "export { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client';",
  'simple-oauth2': null, // Node-only (uses node: modules)
  'openid-client': "export * from 'openid-client';",
  oauth4webapi: "export * from 'oauth4webapi';",
  auth0: null, // Node-only SDK
};

function ourPayload() {
  const pkg = join(root, 'pkg');
  const files = ['browser.mjs', 'api.js', 'autopay_auth.js', 'memory-kv.js', 'autopay_auth_bg.wasm'];
  return files.reduce((n, f) => n + gzipSync(readFileSync(join(pkg, f)), { level: 9 }).length, 0);
}

console.log(`Token clients against the Autopay emulator; Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`storm: ${STORM} concurrent cold calls; steady: ${STEADY_CALLS} calls over ${STEADY_MS / 1000} s with 4-second tokens\n`);
console.log('| client | version | storm: mints | steady: mints | steady: handed out expired | steady: < 100 ms left | steady: failed | cold start: import + construct + first token (ms) | install size | browser payload (gzip) |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, v, make] of peers) {
  const s = await storm(make);
  const d = await steady(make);
  const [cold, npmName] = coldName[name];
  const c = await coldStart(cold);
  const coldText = `${c.total.toFixed(1)} (${c.import.toFixed(1)} + ${c.construct.toFixed(1)} + ${c.first.toFixed(1)})`;
  const install = cold === 'hand-written' ? '—' : kib(installSize(npmName, v));
  const payload = cold === 'autopay-auth' ? kib(ourPayload()) : bundles[cold] ? kib(browserPayload(bundles[cold])) : cold === 'hand-written' ? '—' : 'Node only';
  console.log(`| ${name} | ${v} | ${s.mints} | ${d.mints} | ${d.expired} | ${d.under100} | ${d.failed} | ${coldText} | ${install} | ${payload} |`);
}
await emu.close();

// The runtime matrix: the packed package installed into a consumer project, then imported by
// each runtime the way its users would.
import { execFile, spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chownSync, copyFileSync, readFileSync, readdirSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installedProject } from '../js/helpers.mjs';

export { startEmulator } from '../emulator/server.mjs';
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bin = (name) => join(root, 'node_modules', '.bin', name);

/** The consumer project, with the examples and the fixtures copied in (so `autopay-auth`
 * resolves from them as from a user's code). */
export function consumer() {
  const dir = installedProject();
  for (const f of ['get-token.mjs', 'browser-app.mjs', 'cloudflare-worker.mjs', 'vercel-edge.mjs']) {
    copyFileSync(join(root, 'examples', 'runtimes', f), join(dir, f));
  }
  // what the tests drive, beside the examples
  for (const f of ['worker.mjs', 'redis-process.mjs', 'deno-kv-process.mjs', 'fleet-instance.mjs', 'dpop-process.mjs']) {
    copyFileSync(join(root, 'tests', 'runtimes', 'fixtures', f), join(dir, f));
  }
  return dir;
}

/** Runs a command to completion (bounded, without blocking this process's servers),
 * resolving to stdout; rejects with its output on failure. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} → ${err.code}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export const lastJson = (out) => JSON.parse(out.trim().split('\n').pop());

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** A static file server on 127.0.0.1 for `mounts` ({ '/prefix/': dir }) plus literal pages. */
export async function serve(mounts, pages = {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (pages[path]) {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(pages[path]);
    }
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length)));
      if (!file.startsWith(dir) || !existsSync(file)) break;
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      return res.end(readFileSync(file));
    }
    res.writeHead(404);
    res.end('not found');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}


/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  const s = createTcpServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Debian's redis-server on 127.0.0.1, nothing persisted, its files in `dir`; ready when it
 * answers PING. */
export async function startRedis(dir, { cluster = false } = {}) {
  const port = await freePort();
  // a cluster of one node, which owns every slot: what cluster clients need, on one process
  const clusterArgs = cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-announce-ip', '127.0.0.1'] : [];
  const server = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, ...clusterArgs], { stdio: 'ignore' });
  const cli = (...args) => run('redis-cli', ['-p', String(port), ...args]);
  const until = async (check) => {
    for (let i = 0; i < 50; i++) {
      try {
        if (await check()) return;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis-server on ${port} did not come up`);
  };
  await until(() => cli('ping'));
  if (cluster) {
    await cli('cluster', 'addslotsrange', '0', '16383');
    await until(async () => (await cli('cluster', 'info')).includes('cluster_state:ok'));
  }
  return { port, url: `redis://127.0.0.1:${port}`, cli, stop: () => server.kill('SIGTERM') };
}

/** A throwaway Postgres server of Debian's (installed by scripts/setup-test.sh) on 127.0.0.1:
 * its own cluster in a temporary directory, fsync off, trust authentication. Postgres refuses to
 * run as root: as root the cluster is the `postgres` user's. `{ port, url, stop }`. */
export async function startPostgres() {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => b - a) : [];
  if (versions.length === 0) throw new Error('no Postgres server: run scripts/setup-test.sh (Debian: apt-get install postgresql)');
  const pgBin = (name) => join('/usr/lib/postgresql', versions[0], 'bin', name);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'autopay-auth-pg-'));
  const root = process.getuid?.() === 0;
  const as = (cmd, args) => (root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (root) {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres']).toString());
    chownSync(dir, id('-u'), id('-g'));
  }
  execFileSync(...as(pgBin('initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres']), { stdio: 'ignore' });
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  execFileSync(...as(pgBin('pg_ctl'), ['-D', join(dir, 'data'), '-o', options, '-l', join(dir, 'log'), '-w', 'start']), { stdio: 'ignore' });
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        execFileSync(...as(pgBin('pg_ctl'), ['-D', join(dir, 'data'), '-w', 'stop', '-m', 'immediate']), { stdio: 'ignore' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The Vercel Edge example (vercel-edge.mjs in `dir`) bundled the way the platform bundles it:
 * `*.wasm?module` becomes a WebAssembly.Module binding (`globalThis.__wasm_autopay_auth`),
 * compiled outside the function. Resolves to `{ code, wasm }` (the bundle and the wasm bytes). */
export async function bundleVercelEdge(dir) {
  const { build } = await import('esbuild');
  writeFileSync(join(dir, 'vercel-edge-entry.mjs'), "import handler from './vercel-edge.mjs';\naddEventListener('fetch', (event) => event.respondWith(handler(event.request)));\n");
  let wasm;
  const wasmBinding = {
    name: 'wasm-module-binding',
    setup(b) {
      b.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({ path: join(args.resolveDir, args.path.replace(/\?module$/, '')), namespace: 'wasm-binding' }));
      b.onLoad({ filter: /.*/, namespace: 'wasm-binding' }, (args) => {
        wasm = readFileSync(args.path);
        return { contents: 'export default globalThis.__wasm_autopay_auth;', loader: 'js' };
      });
    },
  };
  const out = await build({
    entryPoints: [join(dir, 'vercel-edge-entry.mjs')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    conditions: ['edge-light', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    plugins: [wasmBinding],
    logLevel: 'error',
  });
  return { code: out.outputFiles[0].text, wasm };
}

/** dynalite (DynamoDB's API on LevelDB, in memory) on 127.0.0.1, with a client of its own to make
 * tables (a string `pk` key) and read every item back. dynalite has no TTL deletion — like
 * DynamoDB, whose deletion comes late, so the adapter's own expiry check is what is tested. */
export async function startDynamo() {
  const { default: dynalite } = await import('dynalite');
  const { DynamoDBClient, CreateTableCommand, ScanCommand } = await import('@aws-sdk/client-dynamodb');
  const server = dynalite({ createTableMs: 0 });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${server.address().port}`;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    port: server.address().port,
    endpoint,
    client,
    createTable: (TableName) =>
      client.send(new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      })),
    /** Every item as `{ key, value, expiresAt }`. */
    values: async (TableName) =>
      (await client.send(new ScanCommand({ TableName, ConsistentRead: true }))).Items.map((i) => ({ key: i.pk.S, value: i.value?.S ?? '', expiresAt: Number(i.expiresAt?.N) })),
    close: async () => {
      client.destroy();
      await new Promise((r) => server.close(() => r()));
    },
  };
}

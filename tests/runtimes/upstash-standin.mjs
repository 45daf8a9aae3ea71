// A stand-in for Upstash Redis's REST API over a real redis-server, for the tests: Upstash's
// own servers cannot be reached offline. It speaks the documented protocol `@upstash/redis`
// uses — `POST /` with a command array, `POST /pipeline` with an array of them, `POST
// /multi-exec` (a transaction), `Authorization: Bearer <token>` (401 otherwise), `{ result }` or
// `{ error }` (HTTP 400), and with `Upstash-Encoding: base64` every string in a result
// base64-encoded but the status `OK`. Each request waits a random 0–(delayMs/2) ms before and
// after the command, so the store is milliseconds away. Binds to 127.0.0.1 only.
import { createServer } from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Upstash's base64 response encoding: strings encoded (all but `OK`), numbers and nulls as they are. */
function encode(v) {
  if (typeof v === 'string') return v === 'OK' ? v : Buffer.from(v, 'utf8').toString('base64');
  if (Array.isArray(v)) return v.map(encode);
  return v;
}

const isCommand = (c) => Array.isArray(c) && c.length > 0 && c.every((a) => ['string', 'number', 'boolean'].includes(typeof a));

export async function upstashStandIn({ redisUrl, redisModule, token, delayMs = 0 }) {
  const { createClient } = await import(redisModule);
  const redis = createClient({ url: redisUrl });
  redis.on('error', () => {});
  await redis.connect();
  const counts = { requests: 0, commands: 0, unauthorized: 0 };
  const exec = async (command) => {
    counts.commands++;
    try {
      return { result: await redis.sendCommand(command.map(String)) };
    } catch (e) {
      return { error: String(e?.message ?? e) };
    }
  };
  /** What the REST API answers `body` at `path`: [HTTP status, JSON]. */
  const run = async (path, body, base64) => {
    const out = (r) => (base64 && 'result' in r ? { result: encode(r.result) } : r);
    if (path === '/') {
      if (!isCommand(body)) return [400, { error: 'ERR the body must be a command array' }];
      const r = await exec(body);
      return [r.error ? 400 : 200, out(r)];
    }
    if (path !== '/pipeline' && path !== '/multi-exec') return [404, { error: 'ERR unknown path' }];
    if (!Array.isArray(body) || !body.every(isCommand)) return [400, { error: 'ERR the body must be an array of commands' }];
    if (path === '/pipeline') return [200, (await Promise.all(body.map(exec))).map(out)];
    const multi = redis.multi();
    for (const c of body) multi.addCommand(c.map(String));
    try {
      return [200, (await multi.exec()).map((result) => out({ result }))];
    } catch (e) {
      return [400, { error: String(e?.message ?? e) }];
    }
  };
  const server = createServer(async (req, res) => {
    counts.requests++;
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (req.method !== 'POST') return reply(405, { error: 'ERR only POST is served here' });
    if (req.headers.authorization !== `Bearer ${token}`) {
      counts.unauthorized++;
      return reply(401, { error: 'Unauthorized' });
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(400, { error: 'ERR failed to parse the request body' });
    }
    const base64 = req.headers['upstash-encoding'] === 'base64';
    await sleep(Math.random() * (delayMs / 2));
    const [status, answer] = await run(new URL(req.url, 'http://x').pathname, body, base64);
    await sleep(Math.random() * (delayMs / 2));
    reply(status, answer);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    token,
    counts,
    close: async () => {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
      await redis.quit().catch(() => {});
    },
  };
}

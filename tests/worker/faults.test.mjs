// The Worker fails closed on minting and open on serving, in real workerd: a wrong secret, an
// API that refuses every token, rate limits, planted KV records, odd methods and headers, and
// request bodies of unknown length, and paths that smuggle a separator past the base check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { auth, CLIENT_ID, CLIENT_SECRET, useWorker, startWorker } from './helpers.mjs';

const ctx = useWorker();

/** The Worker's KV key for its configuration (the core's derivation, schema 2). */
function cacheKey(tokenUrl) {
  const h = createHash('sha256');
  const schema = Buffer.alloc(4);
  schema.writeUInt32BE(2);
  h.update(schema);
  const parts = [tokenUrl, CLIENT_ID, 'https://api.autopay.io', createHash('sha256').update(CLIENT_SECRET).digest()];
  for (const part of parts) {
    const bytes = Buffer.from(part);
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(bytes.length));
    h.update(len);
    h.update(bytes);
  }
  return `autopay-auth:v2:${h.digest('hex')}`;
}

test('a wrong secret: 20 /token calls make one token request, each answered 502 access_denied', async () => {
  const w = await startWorker(ctx.emu, { AUTOPAY_CLIENT_SECRET: 'not-the-secret-value' });
  try {
    for (let i = 0; i < 20; i++) {
      const r = await w.call('/token', { headers: auth() });
      assert.equal(r.status, 502);
      assert.deepEqual(await r.json(), { error: 'access_denied', error_description: 'Unauthorized', status: 401 });
    }
  } finally {
    await w.close();
  }
  assert.equal(ctx.emu.stats().tokenRequests, 1);
});

test('an API that refuses every token: 40 proxied calls mint two tokens, each answered with the API\'s 401', async () => {
  ctx.emu.refuseAll();
  for (let i = 0; i < 40; i++) {
    // bodiless calls go through the JS front, calls with a body through the Rust proxy
    const init = i % 2 === 0 ? { headers: auth() } : { method: 'POST', body: 'x', headers: auth() };
    const r = await ctx.w.call('/orders', init);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error, 'invalid_token');
  }
  assert.equal(ctx.emu.stats().minted, 2);
});

test('a rate limit is a cooldown for the whole Worker: 503 with the seconds left, no request', async () => {
  ctx.emu.fault({ status: 429, headers: { 'retry-after': '30' }, body: { error: 'too_many_requests', error_description: 'slow down' } });
  for (let i = 0; i < 10; i++) {
    const r = await ctx.w.call(i % 2 ? '/token' : '/x', { headers: auth() });
    assert.equal(r.status, 503);
    const left = Number(r.headers.get('retry-after'));
    assert.ok(left > 0 && left <= 30, `retry-after ${left}`);
  }
  assert.equal(ctx.emu.stats().tokenRequests, 1);
});

test('a token planted in KV is never served: records are sealed', async () => {
  const kv = await ctx.w.mf.getKVNamespace('AUTOPAY_TOKENS');
  const key = cacheKey(ctx.emu.tokenUrl);
  const now = Date.now();
  const planted = { v: 2, access_token: 'planted', token_type: 'Bearer', issued_at_ms: now, expires_at_ms: now + 86_400_000 };
  await kv.put(key, JSON.stringify(planted), { expirationTtl: 3600 });
  const body = await (await ctx.w.call('/token', { headers: auth() })).json();
  assert.notEqual(body.access_token, 'planted');
  assert.equal(ctx.emu.stats().minted, 1);
  const stored = await kv.get(key);
  assert.ok(stored.startsWith('v2.') && !stored.includes(body.access_token), 'the Worker wrote a sealed record');
});

test('a method the runtime cannot represent is refused, never turned into a GET', async () => {
  for (const method of ['PROPFIND', 'MKCOL', 'TRACE', 'CONNECT']) {
    const r = await ctx.w.call('/x', { method, headers: auth() }).catch((e) => e);
    if (r instanceof Error) continue; // the test client itself refused to send it
    assert.equal(r.status, 405, method);
    assert.match(r.headers.get('allow'), /GET/);
  }
  assert.equal(ctx.emu.stats().apiRequests, 0);
});

/** What workerd answers a raw HTTP/1.1 request with (for methods fetch will not send). */
function raw(url, request) {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.end(request));
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
  });
}

test('TRACE sent on a raw socket (fetch will not send it) is refused with 405 and Allow, and reaches nobody', async () => {
  const before = ctx.emu.stats().apiRequests;
  const key = auth().authorization;
  const answer = await raw(ctx.w.url, `TRACE /x HTTP/1.1\r\nHost: worker.test\r\nAuthorization: ${key}\r\nConnection: close\r\n\r\n`);
  assert.match(answer.split('\r\n')[0], /^HTTP\/1\.1 405 /, answer);
  assert.match(answer, /\r\nallow: [^\r]*GET/i, answer);
  // CONNECT never reaches the Worker: workerd answers it itself (an error), and forwards nothing
  const connectAnswer = await raw(ctx.w.url, `CONNECT worker.test:443 HTTP/1.1\r\nHost: worker.test:443\r\nAuthorization: ${key}\r\n\r\n`);
  assert.doesNotMatch(connectAnswer.split('\r\n')[0], /^HTTP\/1\.1 2/, connectAnswer);
  assert.equal(ctx.emu.stats().apiRequests, before, 'nothing was forwarded');
});

test('routing and override headers are not forwarded', async () => {
  const r = await ctx.w.call('/x', {
    headers: {
      ...auth(),
      'x-http-method-override': 'DELETE',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      forwarded: 'for=1.2.3.4',
      'x-forwarded-host': 'evil.example',
      'true-client-ip': '1.2.3.4',
      cookie2: 'a=b',
      'x-request-id': 'kept',
    },
  });
  const { headers } = await r.json();
  for (const h of ['x-http-method-override', 'x-original-url', 'x-rewrite-url', 'forwarded', 'x-forwarded-host', 'true-client-ip', 'cookie2']) {
    assert.equal(headers[h], undefined, h);
  }
  assert.equal(headers['x-request-id'], 'kept');
});

/** A body of unknown length (no Content-Length): a stream of `size` bytes. */
function streamOf(size) {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      const n = Math.min(64 * 1024, size - sent);
      if (n === 0) return c.close();
      c.enqueue(new Uint8Array(n).fill(120));
      sent += n;
    },
  });
}

test('a body without Content-Length is replayed after a 401 only up to 1 MiB', async () => {
  await ctx.w.call('/token', { headers: auth() });
  ctx.emu.revoke();
  const small = await ctx.w.call('/up', { method: 'POST', body: streamOf(200 * 1024), duplex: 'half', headers: auth() });
  assert.equal(small.status, 200, 'retried with the kept copy');
  assert.equal((await small.json()).body.length, 200 * 1024);
  ctx.emu.revoke();
  const big = await ctx.w.call('/up', { method: 'POST', body: streamOf(3 * 1024 * 1024), duplex: 'half', headers: auth() });
  assert.equal(big.status, 401, 'streamed once, not retried');
  // the edge, to the byte, with an API that answers its 401 before reading the body: 1 MiB is
  // kept and replayed, one byte more is not. Each on a fresh Worker: a token refused moments
  // after it replaced a refused one starts the refusal hold (no retry), which is not this row
  for (const [size, status] of [[512 * 1024, 200], [1024 * 1024, 200], [1024 * 1024 + 1, 401]]) {
    await ctx.emu.post('/__emulator/reset');
    const w = await startWorker(ctx.emu);
    try {
      await w.call('/token', { headers: auth() });
      ctx.emu.revoke();
      const r = await w.call('/up', { method: 'POST', body: streamOf(size), duplex: 'half', headers: auth() });
      assert.equal(r.status, status, `${size} bytes`);
      if (status === 200) assert.equal((await r.json()).body.length, size);
      else await r.text();
    } finally {
      await w.close();
    }
  }
});

test('a 503 is retried inside the one mint of the Durable Object', async () => {
  ctx.emu.fault({ status: 503, body: { error: 'temporarily_unavailable' } });
  const bodies = await Promise.all(Array.from({ length: 20 }, () => ctx.w.call('/token', { headers: auth() }).then((r) => r.json())));
  assert.equal(new Set(bodies.map((b) => b.access_token)).size, 1);
  assert.deepEqual([ctx.emu.stats().tokenRequests, ctx.emu.stats().minted], [2, 1]);
});

test('a token answer that never ends is refused (502 invalid_response) at 64 KiB, never buffered', async () => {
  ctx.emu.fault({ endless: true });
  const started = Date.now();
  const r = await ctx.w.call('/token', { headers: auth() });
  const took = Date.now() - started;
  // a reader that buffered would wait for the request's timeout, and answer 503 (timeout)
  assert.equal(r.status, 502, `${r.status} after ${took} ms`);
  assert.equal((await r.json()).error, 'invalid_response');
  assert.ok(took < 5_000, `took ${took} ms`);
});

test('a 20 MB token answer is refused (502 invalid_response), never buffered', async () => {
  const huge = { status: 200, raw: JSON.stringify({ access_token: 'a'.repeat(20 * 1024 * 1024), expires_in: 60, token_type: 'Bearer' }) };
  ctx.emu.fault(huge);
  const r = await ctx.w.call('/token', { headers: auth() });
  assert.equal(r.status, 502);
  assert.equal((await r.json()).error, 'invalid_response');
});

test('encoded dots, slashes and backslashes (any case, double-encoded) and ; parameters are refused with 400, front and Rust alike', async () => {
  const smuggling = ['/..%2f..%2fadmin', '/..%2F..%2Fadmin', '/..%5c..%5cadmin', '/%252e%252e/admin', '/x/%25252F/y', '/..;/admin', '/members;jsessionid=1'];
  // a first call, so the token exists and the front's lease path is the one taken
  assert.equal((await ctx.w.call('/customer_club/members', { headers: auth() })).status, 200);
  const before = ctx.emu.stats().apiRequests;
  for (const path of smuggling) {
    // GET: the JS front; POST with a body: Rust
    for (const init of [{ method: 'GET' }, { method: 'POST', body: '{}' }]) {
      const r = await ctx.w.call(`${path}?q=1`, { ...init, headers: auth() });
      const text = await r.text();
      assert.equal(r.status, 400, `${init.method} ${path}: ${text}`);
      assert.equal(JSON.parse(text).error, 'invalid_request');
    }
  }
  assert.equal(ctx.emu.stats().apiRequests, before, 'nothing was sent');
  // what stays allowed: escapes of other characters, and a query with anything in it
  for (const path of ['/customer_club/a%20b', '/customer_club/members?next=..%2f..%2f;x']) {
    assert.equal((await ctx.w.call(path, { headers: auth() })).status, 200, path);
  }
});

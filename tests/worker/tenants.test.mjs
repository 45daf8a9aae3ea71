// Many tenants, one Worker, in workerd: three tenants declared in AUTOPAY_TENANTS — two clients
// of oidc-provider (a certified authorization server on 127.0.0.1) with different scopes and
// client authentications, one on the Autopay emulator — each with its own secrets, Durable
// Object and lease; caller keys granted tenants and API paths in TENANT_API_KEYS. Cold bursts
// make one token request per tenant and every caller gets only its tenant's token; a key never
// reaches another tenant's token or API, by any header or path trick; a tenant's refusal,
// budget and cooldown never touch another's; /healthz and the logs speak per tenant; each
// minter refreshes itself by its alarm.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { decodeJwt } from 'jose';
import { sleep, startEmulator, startWorker, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';
import { startProvider, clientKeys, API, BASIC_SECRET, POST_SECRET } from '../oidc/provider.mjs';

const KEY = {
  autopay: 'key-autopay-0123456789abcdef',
  reader: 'key-reader-0123456789abcdef',
  writer: 'key-writer-0123456789abcdef',
  both: 'key-both-0123456789abcdefgh',
  health: 'key-health-0123456789abcdef',
};
const bearer = (key) => ({ authorization: `Bearer ${key}` });

let emu, as, echo, echoUrl;
const echoed = [];

before(async () => {
  emu = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  as = await startProvider(await clientKeys());
  // the oidc tenants' API: answers with the path it was called on and the token presented
  echo = createServer((req, res) => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    echoed.push({ path: req.url, token });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, token }));
  });
  await new Promise((r) => echo.listen(0, '127.0.0.1', r));
  echoUrl = `http://127.0.0.1:${echo.address().port}`;
});
after(async () => {
  await emu.close();
  await as.close();
  echo.close();
});

/** A Worker with the three tenants; `tenants` overrides tenant settings. */
function worker(tenants = {}) {
  const declared = {
    autopay: { tokenUrl: emu.tokenUrl, apiBaseUrl: `${emu.origin}/api` },
    reader: { tokenUrl: as.tokenUrl, tokenRequest: 'form', audience: 'none', scope: 'read', resource: API, apiBaseUrl: `${echoUrl}/reader-api` },
    writer: { tokenUrl: as.tokenUrl, tokenRequest: 'form', audience: 'none', clientAuth: 'client_secret_basic', scope: 'write', resource: [API], apiBaseUrl: `${echoUrl}/writer-api` },
  };
  for (const [name, o] of Object.entries(tenants)) declared[name] = { ...declared[name], ...o };
  return startWorker(emu, {
    // today's single-tenant settings are not set
    AUTOPAY_CLIENT_ID: null,
    AUTOPAY_CLIENT_SECRET: null,
    PROXY_API_KEYS: null,
    AUTOPAY_TOKEN_URL: null,
    AUTOPAY_API_BASE: null,
    AUTOPAY_TENANTS: JSON.stringify(declared),
    AUTOPAY_AUTOPAY_CLIENT_ID: CLIENT_ID,
    AUTOPAY_AUTOPAY_CLIENT_SECRET: CLIENT_SECRET,
    AUTOPAY_READER_CLIENT_ID: 'post-client',
    AUTOPAY_READER_CLIENT_SECRET: POST_SECRET,
    AUTOPAY_WRITER_CLIENT_ID: 'basic client:1',
    AUTOPAY_WRITER_CLIENT_SECRET: BASIC_SECRET,
    TENANT_API_KEYS: JSON.stringify({
      [KEY.autopay]: { autopay: ['/'] },
      [KEY.reader]: { reader: ['/orders'] },
      [KEY.writer]: { writer: ['/'] },
      [KEY.both]: { reader: [], writer: ['/reports'] },
    }),
    HEALTH_API_KEYS: KEY.health,
  });
}

/** Whose token `token` is: `autopay` (the emulator's), or the oidc client and scope in its JWT. */
function owner(token) {
  if (!token.includes('.')) return 'autopay';
  const claims = decodeJwt(token);
  if (claims.client_id === 'post-client' && claims.scope === 'read') return 'reader';
  if (claims.client_id === 'basic client:1' && claims.scope === 'write') return 'writer';
  return `unknown ${claims.client_id} ${claims.scope}`;
}

const reset = async () => {
  await emu.post('/__emulator/reset');
  as.reset();
};

test('three tenants, 300 concurrent cold /token spread over them: one token request per tenant, each caller only its own tenant\'s token', async () => {
  const rounds = 2;
  for (let round = 0; round < rounds; round++) {
    await reset();
    const w = await worker();
    try {
      const names = ['autopay', 'reader', 'writer'];
      const calls = Array.from({ length: 300 }, (_, i) => names[(i * 7 + round) % 3]);
      const answers = await Promise.all(
        calls.map(async (name) => {
          const r = await w.call(`/t/${name}/token`, { headers: bearer(KEY[name]) });
          return { name, status: r.status, body: await r.json() };
        }),
      );
      const wrong = answers.filter((a) => a.status !== 200 || owner(a.body.access_token) !== a.name);
      assert.deepEqual(wrong, [], `round ${round}`);
      assert.equal(emu.stats().minted, 1, `round ${round}: one Autopay token request`);
      assert.equal(as.stats.requests, 2, `round ${round}: one token request each for reader and writer`);
      const perTenant = names.map((n) => new Set(answers.filter((a) => a.name === n).map((a) => a.body.access_token)).size);
      assert.deepEqual(perTenant, [1, 1, 1]);
      console.log(`# tenants: round ${round}: 300 cold calls (${names.map((n) => `${n} ${calls.filter((c) => c === n).length}`).join(', ')}): token requests autopay ${emu.stats().minted}, oidc ${as.stats.requests}; crossed 0`);
      // the mints are logged per tenant
      await sleep(50);
      const mintLines = w.logs.filter((l) => l.includes('"type":"mint"'));
      assert.deepEqual(mintLines.map((l) => /"label":"(\w+)"/.exec(l)?.[1]).sort(), ['autopay', 'reader', 'writer']);
    } finally {
      await w.close();
    }
  }
});

test('a key never reaches another tenant\'s token or API, by header or path', async () => {
  await reset();
  const w = await worker();
  try {
    const status = async (path, key, init = {}) => (await w.call(path, { ...init, headers: { ...bearer(key), ...init.headers } })).status;
    // other tenants' tokens: refused, and an unknown tenant looks the same
    assert.equal(await status('/t/writer/token', KEY.reader), 403);
    assert.equal(await status('/t/autopay/token', KEY.reader), 403);
    assert.equal(await status('/t/nobody/token', KEY.reader), 403);
    assert.equal(await status('/t/Reader/token', KEY.reader), 403, 'names are exact');
    assert.equal((await w.call('/t/reader/token')).status, 401, 'no key');
    assert.equal(await status('/t/reader/token', KEY.health), 401, 'a health key fetches no token');
    assert.equal(await status('/token', KEY.reader), 404, 'no single-tenant routes');
    assert.equal(await status('/orders', KEY.reader), 404);
    // tricks: the tenant comes from the path alone
    for (const headers of [{ 'x-autopay-tenant': 'writer' }, { host: 'writer' }, { 'x-forwarded-host': 'writer' }, { 'x-original-url': '/t/writer/token' }]) {
      const r = await w.call('/t/reader/token', { headers: { ...bearer(KEY.reader), ...headers } });
      assert.equal(owner((await r.json()).access_token), 'reader', JSON.stringify(headers));
    }
    assert.equal(await status('/t/reader/../writer/token', KEY.reader), 403, 'dot segments are resolved first');
    assert.equal(await status('/t/reader%2F..%2Fwriter/token', KEY.reader), 403);
    assert.equal(await status('/t/reader/%2e%2e/writer/token', KEY.reader), 403);
    assert.equal(await status('/t//writer/token', KEY.reader), 403);
    assert.equal(await status('/t/writer/token', `${KEY.reader}, ${KEY.writer}`), 401, 'one key per call');
    // API paths: only the prefixes granted, whole segments
    echoed.length = 0;
    const r = await w.call('/t/reader/orders/7?x=1', { headers: bearer(KEY.reader) });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.path, '/reader-api/orders/7?x=1');
    assert.equal(owner(body.token), 'reader');
    for (const path of ['/t/reader/ordersX', '/t/reader/admin', '/t/reader/orders/../admin', '/t/reader/', '/t/writer/orders']) {
      assert.equal(await status(path, KEY.reader), 403, path);
    }
    assert.ok([400, 403].includes(await status('/t/reader/orders%2F..%2Fadmin', KEY.reader)));
    assert.equal(await status('/t/reader/orders', KEY.both), 403, 'tokens only for this key at reader');
    assert.equal(await status('/t/reader/token', KEY.both), 200);
    const reports = await w.call('/t/writer/reports/1', { headers: bearer(KEY.both), method: 'POST', body: '{}' });
    assert.equal(reports.status, 200);
    assert.equal(owner((await reports.json()).token), 'writer');
    assert.equal(await status('/t/writer/other', KEY.both), 403);
    assert.ok(echoed.every((e) => e.path.startsWith('/reader-api/orders') || e.path.startsWith('/writer-api/reports')), JSON.stringify(echoed));
    // refusals of another tenant's token are not a way in either
    const stolen = (await (await w.call('/t/writer/token', { headers: bearer(KEY.writer) })).json()).access_token;
    assert.equal(await status('/t/writer/token/refused', KEY.reader, { method: 'POST', body: JSON.stringify({ access_token: stolen }) }), 403);
    const theirs = await (await w.call('/t/reader/token/refused', { method: 'POST', headers: bearer(KEY.reader), body: JSON.stringify({ access_token: stolen }) })).json();
    assert.equal(theirs.result, 'not_held', "the reader's minter does not hold the writer's token");
    assert.equal((await (await w.call('/t/writer/token', { headers: bearer(KEY.writer) })).json()).access_token, stolen, 'still the writer\'s');
  } finally {
    await w.close();
  }
});

test("one tenant's refusal, budget and cooldown never touch another's", async () => {
  await reset();
  const w = await worker({ writer: { mintBudget: '1/hour' } });
  try {
    const get = async (name) => {
      const r = await w.call(`/t/${name}/token`, { headers: bearer(KEY[name]) });
      return { status: r.status, body: await r.json() };
    };
    const reader = (await get('reader')).body.access_token;
    const writer = (await get('writer')).body.access_token;
    // the writer's token refused: dropped; its budget of one an hour is spent, so it waits
    const refused = await w.call('/t/writer/token/refused', { method: 'POST', headers: bearer(KEY.writer), body: JSON.stringify({ access_token: writer }) });
    assert.equal((await refused.json()).result, 'dropped');
    const spent = await get('writer');
    assert.equal(spent.body.error, 'mint_budget_exhausted', JSON.stringify(spent));
    // the reader keeps its token and its own budget
    assert.equal((await get('reader')).body.access_token, reader);
    const dropped = await w.call('/t/reader/token/refused', { method: 'POST', headers: bearer(KEY.reader), body: JSON.stringify({ access_token: reader }) });
    assert.equal((await dropped.json()).result, 'dropped');
    const next = await get('reader');
    assert.equal(next.status, 200);
    assert.notEqual(next.body.access_token, reader);
    // the Autopay tenant rate-limited: its callers wait; the others are served
    await emu.post('/__emulator/faults', [{ status: 429, headers: { 'retry-after': '60' }, body: { error: 'too_many_requests' } }]);
    const limited = await get('autopay');
    assert.equal(limited.body.error, 'too_many_requests', JSON.stringify(limited));
    assert.equal((await get('autopay')).status, limited.status, 'the Autopay tenant waits out its cooldown');
    assert.equal((await get('reader')).status, 200);
    assert.equal(emu.stats().minted, 0);
  } finally {
    await w.close();
  }
});

test('/healthz per tenant, bad tenant settings named, and each minter refreshes itself by its alarm', async () => {
  await reset();
  const w = await worker();
  try {
    await w.call('/t/autopay/token', { headers: bearer(KEY.autopay) });
    const anon = await (await w.call('/healthz')).json();
    assert.deepEqual(anon, { ok: true });
    const mine = await (await w.call('/healthz', { headers: bearer(KEY.reader) })).json();
    assert.deepEqual(Object.keys(mine.tenants), ['reader'], 'a caller sees its own tenants');
    const all = await (await w.call('/healthz', { headers: bearer(KEY.health) })).json();
    assert.deepEqual(Object.keys(all.tenants).sort(), ['autopay', 'reader', 'writer']);
    assert.equal(all.tenants.autopay.token.state, 'fresh');
    assert.equal(all.tenants.reader.token.state, 'none');
    const one = await (await w.call('/t/autopay/healthz', { headers: bearer(KEY.autopay) })).json();
    assert.equal(one.token.state, 'fresh');
    const text = JSON.stringify(all);
    for (const secret of [CLIENT_SECRET, POST_SECRET, BASIC_SECRET, KEY.reader]) assert.ok(!text.includes(secret));
  } finally {
    await w.close();
  }
  // settings that are wrong are named by tenant, never with their values
  const bad = await startWorker(emu, {
    AUTOPAY_CLIENT_ID: null,
    AUTOPAY_CLIENT_SECRET: null,
    PROXY_API_KEYS: null,
    AUTOPAY_TENANTS: JSON.stringify({ acme: { tokenUrl: 'ftp://x', clientSecret: 'inline-secret-0000', refreshRatio: 2 }, 'Bad-Name': {} }),
    TENANT_API_KEYS: JSON.stringify({ [KEY.reader]: { ghost: ['/'] } }),
  });
  try {
    const r = await bad.call('/t/acme/token', { headers: bearer(KEY.reader) });
    assert.equal(r.status, 500);
    const body = await r.json();
    const named = body.settings.map((p) => p.setting);
    for (const s of ['AUTOPAY_TENANTS.acme.clientSecret', 'AUTOPAY_ACME_CLIENT_ID', 'AUTOPAY_TENANTS.acme.tokenUrl', 'AUTOPAY_TENANTS.acme.refreshRatio', 'AUTOPAY_TENANTS', 'TENANT_API_KEYS']) assert.ok(named.includes(s), `${s} in ${named}`);
    assert.ok(!JSON.stringify(body).includes('inline-secret-0000'));
  } finally {
    await bad.close();
  }
  // a single-tenant Worker sets its policy too: a refresh ratio out of range is named; one in
  // range moves the refresh point (a caller may keep a 100-second token 50 s, not 75)
  const ratio = await startWorker(emu, { AUTOPAY_REFRESH_RATIO: '0.5x' });
  try {
    const r = await ratio.call('/token', { headers: { authorization: 'Bearer caller-key-0123456789abcdef' } });
    assert.equal(r.status, 500);
    assert.deepEqual((await r.json()).settings.map((p) => p.setting), ['AUTOPAY_REFRESH_RATIO']);
  } finally {
    await ratio.close();
  }
  await reset();
  await emu.post('/__emulator/config', { expiresIn: 100 });
  const half = await startWorker(emu, { AUTOPAY_REFRESH_RATIO: '0.5', AUTOPAY_REFRESH_JITTER_SEC: '0' });
  try {
    const r = await half.call('/token', { headers: { authorization: 'Bearer caller-key-0123456789abcdef' } });
    assert.equal(r.status, 200);
    const keep = Number(/max-age=(\d+)/.exec(r.headers.get('cache-control'))[1]);
    assert.ok(keep >= 48 && keep <= 50, `kept ${keep} s`);
  } finally {
    await half.close();
    await emu.post('/__emulator/config', { expiresIn: 86400 });
  }
  // the alarm: 3-second tokens; after the first, no caller asks, and the minter mints ahead
  await reset();
  await emu.post('/__emulator/config', { expiresIn: 3 });
  const a = await worker();
  try {
    await a.call('/t/autopay/token', { headers: bearer(KEY.autopay) });
    assert.equal(emu.stats().minted, 1);
    for (const until = Date.now() + 6_000; emu.stats().minted < 2 && Date.now() < until; ) await sleep(100);
    assert.ok(emu.stats().minted >= 2, 'the minter refreshed by its alarm, with no caller');
  } finally {
    await a.close();
    await emu.post('/__emulator/config', { expiresIn: 86400 });
  }
});

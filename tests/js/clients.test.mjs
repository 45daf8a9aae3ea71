// Many credential sets in one process: AutopayAuthClients, and isolation you can check. The
// token endpoint here (127.0.0.1) mints tokens that say whom they were minted for — the client
// id, the credential, the audience, scope and resources, a further parameter and header — so
// every token a caller gets can be traced to the request that minted it. Configurations that
// differ in one field only share one registry, one store and the one wasm instance; under
// concurrent calls, refusals and invalidations, no token ever reaches a caller of another
// configuration, and one configuration's budget, cooldown or refusal never touches another's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { importPackage, rejection } from './helpers.mjs';

let AutopayAuthClients, AutopayAuth, MemoryKV, server, url;
/** Per client id: 429 with this Retry-After. */
const cooldowns = new Map();
let minted = 0;

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const unb64 = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());

before(async () => {
  ({ AutopayAuthClients, AutopayAuth, MemoryKV } = await importPackage());
  server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    if (req.url.startsWith('/api/')) {
      // the API: who is calling, from the token presented
      const auth = req.headers.authorization ?? '';
      res.writeHead(auth.startsWith('Bearer ') ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: auth.slice(7) }));
      return;
    }
    const form = new URLSearchParams(body);
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = req.headers.authorization;
    if (basic?.startsWith('Basic ')) {
      const [i, s] = Buffer.from(basic.slice(6), 'base64').toString().split(':').map(decodeURIComponent);
      id = i;
      secret = s;
    }
    const assertion = form.get('client_assertion');
    const kid = assertion ? JSON.parse(Buffer.from(assertion.split('.')[0], 'base64url').toString()).kid : null;
    const wait = cooldowns.get(id);
    if (wait !== undefined) {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(wait) });
      res.end('{"error":"too_many_requests"}');
      return;
    }
    const who = {
      id,
      secret: secret ?? null,
      kid,
      basic: basic?.startsWith('Basic ') ?? false,
      audience: form.get('audience'),
      scope: form.get('scope'),
      resource: form.getAll('resource'),
      organization: form.get('organization'),
      tenant: req.headers['x-tenant'] ?? null,
    };
    minted++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: `t${minted}.${b64(who)}`, token_type: 'bearer', expires_in: 3600 }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

const key = (kid) => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid });

/** A base configuration and variants that each differ from it in one field only, with what a
 * token minted for each must say. */
function variants() {
  const base = { tokenUrl: `${url}/token`, apiBaseUrl: `${url}/api`, clientId: 'c1', clientSecret: 's1', tokenRequest: 'form', audience: 'https://api.a', scope: 'read' };
  const who = { id: 'c1', secret: 's1', kid: null, basic: false, audience: 'https://api.a', scope: 'read', resource: [], organization: null, tenant: null };
  const [k1, k2] = [key('k1'), key('k2')];
  const jwt = (k) => ({ ...base, clientSecret: undefined, clientAuth: 'private_key_jwt', privateKey: JSON.stringify(k) });
  return [
    ['base', base, who],
    ['client id', { ...base, clientId: 'c2' }, { ...who, id: 'c2' }],
    ['secret', { ...base, clientSecret: 's2' }, { ...who, secret: 's2' }],
    ['audience', { ...base, audience: 'https://api.b' }, { ...who, audience: 'https://api.b' }],
    ['scope', { ...base, scope: 'write' }, { ...who, scope: 'write' }],
    ['resource', { ...base, resource: 'https://r.one' }, { ...who, resource: ['https://r.one'] }],
    ['parameter', { ...base, tokenParams: { organization: 'o1' } }, { ...who, organization: 'o1' }],
    ['parameter value', { ...base, tokenParams: { organization: 'o2' } }, { ...who, organization: 'o2' }],
    ['header', { ...base, tokenHeaders: { 'x-tenant': 't1' } }, { ...who, tenant: 't1' }],
    ['client auth', { ...base, clientAuth: 'client_secret_basic' }, { ...who, basic: true }],
    ['key', jwt(k1), { ...who, secret: null, kid: 'k1' }],
    ['other key', jwt(k2), { ...who, secret: null, kid: 'k2' }],
  ];
}

/** A seeded generator (mulberry32): a failing seed replays. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a registry keys clients by identity, names them, shares the store and stays bounded', async () => {
  const kv = new MemoryKV();
  const clients = new AutopayAuthClients({ kv, logger: null, max: 3, clients: { acme: { tokenUrl: `${url}/token`, clientId: 'c1', clientSecret: 's1', tokenRequest: 'form', audience: 'https://api.a' } } });
  const acme = clients.get('acme');
  assert.equal(acme.label, 'acme');
  assert.equal(clients.get('acme'), acme, 'one client per name');
  const [, base] = variants()[0];
  const same = clients.get({ ...base, scope: undefined });
  assert.equal(same, acme, 'the same configuration under another spelling is the same client');
  assert.notEqual(clients.get(base), acme, 'one field more is another client');
  assert.deepEqual(clients.names(), ['acme']);
  clients.get({ ...base, scope: 'a' });
  clients.get({ ...base, scope: 'b' });
  assert.equal(clients.size, 3, 'at most max kept');
  assert.notEqual(clients.get('acme'), acme, 'the least recently used was let go, and is built anew');
  const bad = await rejection((async () => clients.get({ ...base, tokenParams: { client_id: 'x' } }))());
  assert.equal(bad.code, 'invalid_config');
  assert.equal(bad.option, 'tokenParams');
  assert.throws(() => clients.define('acme', base), /defined already/);
  assert.throws(() => clients.define('a b', base), /client name/);
  assert.throws(() => clients.get('nobody'), /no client is named/);
  assert.equal(new AutopayAuth({ ...base, label: 'solo', kv }).label, 'solo', 'the single-client API stands');
});

test('no token ever reaches a caller of another configuration (seeded, concurrent)', async () => {
  const seed = Number(process.env.AUTOPAY_SEED ?? 0x5eed);
  const rand = prng(seed);
  const kv = new MemoryKV();
  const clients = new AutopayAuthClients({ kv, logger: null });
  const all = variants();
  let calls = 0;
  let crossed = 0;
  let drops = 0;
  let budgetRefusals = 0;
  const rounds = 60;
  for (let round = 0; round < rounds; round++) {
    const wave = [];
    const burst = 20 + Math.floor(rand() * 40);
    for (let i = 0; i < burst; i++) {
      const [name, options, who] = all[Math.floor(rand() * all.length)];
      const auth = clients.get(options); // looked up anew each call, as a handler would
      const check = (token) => {
        calls++;
        const got = unb64(token);
        if (JSON.stringify(got) !== JSON.stringify(who)) {
          crossed++;
          assert.fail(`seed ${seed} round ${round}: ${name} got a token minted for ${JSON.stringify(got)}`);
        }
      };
      const r = rand();
      // a budget refusal is the storm guard at work (many drops of one client), not a crossing
      const spent = (e) => {
        if (e?.code !== 'mint_budget_exhausted') throw e;
        budgetRefusals++;
      };
      if (r < 0.5) wave.push(auth.getToken().then(check, spent));
      else if (r < 0.92) wave.push(auth.fetch('/whoami').then((res) => res.json()).then((b) => check(b.token), spent));
      else if (r < 0.97) {
        drops++;
        wave.push(auth.getToken().then(async (t) => { check(t); await auth.refused(t); }, spent));
      } else {
        drops++;
        wave.push(auth.invalidate());
      }
    }
    await Promise.all(wave);
  }
  console.log(`# isolation (npm): seed ${seed}, ${rounds} rounds, ${all.length} configurations differing in one field each, ${calls} tokens checked, ${drops} refusals or invalidations, ${minted} mints, ${budgetRefusals} budget refusals, ${crossed} crossed`);
  assert.equal(crossed, 0);
  assert.ok(calls > 1000, `${calls} checks`);
  assert.equal(new Set(all.map(([, o]) => clients.get(o).cacheKey)).size, all.length, 'every variant is its own identity');
});

test("one configuration's budget, cooldown and refusal never touch another's", async () => {
  const kv = new MemoryKV();
  const clients = new AutopayAuthClients({ kv, logger: null, mintBudget: { perHour: 2 } });
  const [, base] = variants()[0];
  const a = clients.get({ ...base, clientId: 'budget-a' });
  const b = clients.get({ ...base, clientId: 'budget-a', scope: 'write' });
  // A's refusals: B keeps its token (no mint); A's two mints an hour are spent
  const tb = await b.getToken();
  assert.equal(await a.refused(await a.getToken()), 'dropped');
  await a.getToken();
  await a.invalidate();
  assert.equal(await b.getToken(), tb, "A's refusals do not drop B's token");
  assert.equal(b.stats().mints, 1);
  const spent = await rejection(a.getToken());
  assert.equal(spent.code, 'mint_budget_exhausted', "A's budget is spent");
  // B's own budget is untouched: its refusal still gets one new token
  assert.equal(await b.refused(tb), 'dropped');
  assert.notEqual(await b.getToken(), tb, "A's spent budget does not touch B's");
  // a cooldown: the endpoint rate-limits C's client id; D (another client id) is served
  cooldowns.set('cool-c', 60);
  try {
    const c = clients.get({ ...base, clientId: 'cool-c' });
    const d = clients.get({ ...base, clientId: 'cool-d' });
    assert.equal((await rejection(c.getToken())).code, 'rate_limited');
    assert.equal((await rejection(c.getToken())).code, 'rate_limited', 'C waits out its cooldown');
    assert.equal(unb64(await d.getToken()).id, 'cool-d', "C's cooldown does not touch D");
  } finally {
    cooldowns.delete('cool-c');
  }
});

test('events and measurements carry the label, never a secret', async () => {
  const events = [];
  const clients = new AutopayAuthClients({ logger: null, onEvent: (e) => events.push(e) });
  const [, base] = variants()[0];
  clients.define('acme', { ...base, clientId: 'label-a' }).define('beta', { ...base, clientId: 'label-b' });
  await clients.get('acme').getToken();
  await clients.get('beta').getToken();
  const mints = events.filter((e) => e.type === 'mint').map((e) => e.label);
  assert.deepEqual(mints.sort(), ['acme', 'beta']);
  assert.ok(!JSON.stringify(events).includes('s1'), 'no secret in an event');
});

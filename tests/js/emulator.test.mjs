// The emulator follows the vendor contract strictly; tests elsewhere rely on it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from './helpers.mjs';

let emu;
before(async () => (emu = await startEmulator({ clientId: 'id', clientSecret: 'secret', expiresIn: 120 })));
after(() => emu.close());

const good = { client_id: 'id', client_secret: 'secret', audience: 'https://api.autopay.io', grant_type: 'client_credentials' };
const post = (body, headers = { 'content-type': 'application/json' }, method = 'POST') =>
  fetch(emu.tokenUrl, { method, headers, body: method === 'GET' ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });

test('issues opaque bearer tokens with the configured lifetime', async () => {
  const res = await post(good);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type']);
  assert.equal(body.expires_in, 120);
  assert.equal(body.token_type, 'Bearer');
  assert.match(body.access_token, /^[A-Za-z0-9_-]{43}$/);
  const api = await fetch(`${emu.origin}/v1/x`, { headers: { authorization: `Bearer ${body.access_token}` } });
  assert.equal(api.status, 200);
});

test('refuses everything off-contract with error / error_description', async () => {
  const cases = [
    [post({ ...good, client_secret: 'nope' }), 401, 'access_denied'],
    [post({ ...good, client_id: 'nope' }), 401, 'access_denied'],
    [post({ ...good, audience: 'https://x' }), 400, 'invalid_request'],
    [post({ ...good, grant_type: 'password' }), 400, 'unsupported_grant_type'],
    [post({ ...good, client_id: undefined }), 400, 'invalid_request'],
    [post({ ...good, client_secret: 5 }), 400, 'invalid_request'],
    [post('not json'), 400, 'invalid_request'],
    [post('[]'), 400, 'invalid_request'],
    [post(good, { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'invalid_request'],
    [post(good, {}, 'GET'), 405, 'invalid_request'],
  ];
  for (const [pending, status, error] of cases) {
    const res = await pending;
    assert.equal(res.status, status);
    const body = await res.json();
    assert.equal(body.error, error);
    assert.equal(typeof body.error_description, 'string');
  }
});

test('the sample API accepts only live tokens it issued', async () => {
  for (const auth of [undefined, 'Bearer made-up', 'Basic abc']) {
    const res = await fetch(`${emu.origin}/v1/x`, { headers: auth ? { authorization: auth } : {} });
    assert.equal(res.status, 401);
  }
  emu.setExpiresIn(1);
  const { access_token } = await (await post(good)).json();
  await new Promise((r) => setTimeout(r, 1_050));
  const res = await fetch(`${emu.origin}/v1/x`, { headers: { authorization: `Bearer ${access_token}` } });
  assert.equal(res.status, 401);
  emu.setExpiresIn(120);
});

test('counts mints, injects faults, answers CORS preflight', async () => {
  await emu.post('/__emulator/reset');
  await emu.post('/__emulator/faults', [{ status: 429, headers: { 'retry-after': '5' }, body: { error: 'slow_down', error_description: 'x' } }]);
  const limited = await post(good);
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('retry-after'), '5');
  await post(good);
  const stats = await (await fetch(`${emu.origin}/__emulator/stats`)).json();
  assert.equal(stats.minted, 1);
  assert.equal(stats.tokenRequests, 2);
  const pre = await fetch(emu.tokenUrl, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:1', 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
});

test('compat mode also accepts RFC 6749 clients (form bodies, client_secret_basic); strict mode does not', async () => {
  const compat = await startEmulator({ clientId: 'id', clientSecret: 's/ecret', compat: true });
  try {
    const form = (body, headers = {}) =>
      fetch(compat.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const basic = `Basic ${Buffer.from(`id:${encodeURIComponent('s/ecret')}`).toString('base64')}`;
    assert.equal((await form('grant_type=client_credentials', { authorization: basic })).status, 200);
    assert.equal((await form('grant_type=client_credentials&client_id=id&client_secret=s%2Fecret')).status, 200);
    assert.equal((await form('grant_type=client_credentials&client_id=id&client_secret=wrong')).status, 401);
    assert.equal((await form('grant_type=password', { authorization: basic })).status, 400);
    assert.equal(compat.stats().minted, 2);
  } finally {
    await compat.close();
  }
  // the default stays strict
  const strict = await post('grant_type=client_credentials&client_id=id&client_secret=secret', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(strict.status, 400);
});

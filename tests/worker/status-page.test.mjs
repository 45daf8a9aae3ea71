// The operator's page, in a real browser: headless Chromium (Debian's, driven by playwright-core)
// loads GET /status from the Worker in workerd, with two tenants on two Autopay emulators — one
// minting (three tokens this hour, through the operator's lever), one in a cooldown after a 429.
// The test checks what a person sees (the chart's bars are the ledger's, the cooldown is shown
// with its reason, each token's timeline), that nothing secret is in the DOM, the page source or
// any request the page makes (it makes none), and keeps a screenshot as a test artefact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startEmulator, startWorker, CLIENT_ID, CLIENT_SECRET } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = {
  caller: 'key-caller-0123456789abcdef',
  health: 'key-health-0123456789abcdef',
  operator: 'key-operator-0123456789abcd',
};
const bearer = (key) => ({ authorization: `Bearer ${key}` });
const HOSTILE = 'too_many_requests<script>document.title="owned"</script>';
/** Where the screenshot is kept. */
const SCREENSHOT = join(root, 'target', 'test-artifacts', 'status-page.png');

let payments, payouts, w, browser;
const tokens = [];

before(async () => {
  payments = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  payouts = await startEmulator({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  w = await startWorker(payments, {
    AUTOPAY_CLIENT_ID: null,
    AUTOPAY_CLIENT_SECRET: null,
    PROXY_API_KEYS: null,
    AUTOPAY_TOKEN_URL: null,
    AUTOPAY_API_BASE: null,
    AUTOPAY_TENANTS: JSON.stringify({
      payments: { tokenUrl: payments.tokenUrl, apiBaseUrl: `${payments.origin}/api` },
      payouts: { tokenUrl: payouts.tokenUrl, apiBaseUrl: `${payouts.origin}/api` },
    }),
    AUTOPAY_PAYMENTS_CLIENT_ID: CLIENT_ID,
    AUTOPAY_PAYMENTS_CLIENT_SECRET: CLIENT_SECRET,
    AUTOPAY_PAYOUTS_CLIENT_ID: CLIENT_ID,
    AUTOPAY_PAYOUTS_CLIENT_SECRET: CLIENT_SECRET,
    TENANT_API_KEYS: JSON.stringify({ [KEY.caller]: { payments: ['/'], payouts: ['/'] } }),
    HEALTH_API_KEYS: KEY.health,
    OPERATOR_API_KEYS: KEY.operator,
  });
  // `payments` is metered: the vendor declares its quota (Auth0's header) with every token
  await payments.post('/__emulator/config', { quota: { kind: 'auth0', limit: 50, windowSec: 3600 } });
  // three tokens for `payments` this hour: minted, dropped by the operator's lever, minted again
  for (let i = 0; i < 3; i += 1) {
    if (i > 0) assert.equal((await w.call('/t/payments/token/invalidate', { method: 'POST', headers: bearer(KEY.operator) })).status, 200);
    const r = await w.call('/t/payments/token', { headers: bearer(KEY.caller) });
    assert.equal(r.status, 200);
    tokens.push((await r.json()).access_token);
  }
  // `payouts`: the token endpoint rate-limits it, and the fleet waits
  // (its `error` carries markup, as a broken or hostile vendor's might: the page shows it as text)
  payouts.fault({ status: 429, body: { error: HOSTILE, error_description: 'Quota exceeded' }, headers: { 'retry-after': '600' } });
  assert.equal((await w.call('/t/payouts/token', { headers: bearer(KEY.caller) })).status, 503);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await w?.close();
  await payments?.close();
  await payouts?.close();
});

const secrets = () => [CLIENT_SECRET, KEY.caller, KEY.health, KEY.operator, ...tokens];

test('only a health key opens the page: a caller key alone is 403, no key 401', async () => {
  assert.equal((await w.call('/status')).status, 401);
  assert.equal((await w.call('/status', { headers: bearer(KEY.caller) })).status, 403);
  assert.equal((await w.call('/status', { headers: bearer(KEY.operator) })).status, 401);
  const page = await w.call('/status', { headers: bearer(KEY.health) });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /^default-src 'none'; style-src 'nonce-[A-Za-z0-9+/=]{24}';/);
  const html = await page.text();
  assert.ok(html.includes(`<style nonce="${/nonce-([^']+)'/.exec(csp)[1]}">`), 'the style carries the nonce');
  assert.ok(!/<script|<img|<link|src=|href=/i.test(html), 'no script, image, link or reference to load');
  for (const s of secrets()) assert.ok(!html.includes(s), 'no token, secret or key in the page');
});

test('?format=json is the same report for machines', async () => {
  const r = await w.call('/status?format=json', { headers: bearer(KEY.health) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const text = await r.text();
  for (const s of secrets()) assert.ok(!text.includes(s));
  const report = JSON.parse(text);
  assert.deepEqual(report.tenants.map((t) => t.name), ['payments', 'payouts']);
  const [p, q] = report.tenants;
  assert.deepEqual(p.minter.ledger.mints_per_hour.map(([, n]) => n), [3]);
  assert.equal(q.minter.gate.kind, 'cooldown');
  assert.equal(q.minter.gate.code, 'rate_limited');
  const viaAccept = await w.call('/status', { headers: { ...bearer(KEY.health), accept: 'application/json' } });
  assert.equal((await viaAccept.json()).tenants.length, 2);
});

test('in Chromium: the bars are the ledger, the cooldown shows its reason, nothing secret anywhere', async () => {
  const report = await (await w.call('/status?format=json', { headers: bearer(KEY.health) })).json();
  const page = await browser.newPage({ viewport: { width: 760, height: 1400 } });
  const requests = [];
  const problems = [];
  page.on('request', (r) => requests.push(r));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.setExtraHTTPHeaders(bearer(KEY.health));
    const response = await page.goto(new URL('/status', w.url).href);
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'autopay-auth — tokens at a glance');
    // what a person sees: each tenant, by name
    assert.deepEqual(await page.locator('section.tenant h2').allTextContents(), ['payments', 'payouts']);
    // the chart: one bar per hour for 48 hours, the ledger's counts on them
    const payments = page.locator('section[data-tenant="payments"]');
    const bars = await payments.locator('svg.mints rect.bar').evaluateAll((rs) => rs.map((r) => [Number(r.dataset.hour), Number(r.dataset.mints), r.getBBox().height]));
    assert.equal(bars.length, 48);
    const drawn = bars.filter(([, n]) => n > 0).map(([h, n]) => [h, n]);
    assert.deepEqual(drawn, report.tenants[0].minter.ledger.mints_per_hour);
    assert.ok(bars.filter(([, n]) => n > 0).every(([, , height]) => height > 0), 'a bar is drawn for each hour with mints');
    assert.ok(bars.filter(([, n]) => n === 0).every(([, , height]) => height === 0));
    // the token's timeline, fresh, and no gate
    assert.equal(await payments.locator('svg.timeline').getAttribute('data-state'), 'fresh');
    assert.equal(await payments.locator('[data-gate]').getAttribute('data-gate'), 'open');
    // the cooldown, with its reason, on the other tenant
    const payouts = page.locator('section[data-tenant="payouts"]');
    assert.equal(await payouts.locator('[data-gate]').getAttribute('data-gate'), 'cooldown');
    const reason = await payouts.locator('[data-gate] .reason').textContent();
    assert.match(reason, /rate_limited/);
    assert.match(reason, /HTTP 429/);
    assert.ok(reason.includes(HOSTILE), 'the vendor\u2019s text shown as text');
    assert.equal(await page.locator('script').count(), 0, 'no markup from the report is live');
    assert.match(await payouts.locator('[data-gate]').textContent(), /in (9|10) min/);
    assert.equal(await payouts.locator('ol.failures li').first().getAttribute('data-code'), 'rate_limited');
    assert.equal(await payouts.locator('[data-token="none"]').count(), 1, 'no token held');
    // the vendor's quota, as declared: 50 an hour, 47 left
    const quota = report.tenants[0].minter.quotas[0];
    assert.deepEqual([quota.limit, quota.remaining], [50, 47]);
    const cells = await payments.locator(`tr[data-limit="${quota.name}"] td`).allTextContents();
    assert.deepEqual(cells.slice(1, 4), ['50', '3', '47']);
    assert.match(cells[4], /UTC \(in \d+ (min|s)\)/);
    // the budget: what the fleet used of it
    const budget = await payments.locator('tr[data-limit="budget"] td').allTextContents();
    assert.deepEqual(budget.slice(1, 4), [String(report.tenants[0].minter.budget.allowed), '3', String(report.tenants[0].minter.budget.allowed - 3)]);
    // nothing secret in the DOM or the page source, and the page loaded nothing else
    const dom = await page.evaluate(() => document.documentElement.outerHTML);
    const source = await response.text();
    for (const s of secrets()) {
      assert.ok(!dom.includes(s) && !source.includes(s), 'no token, secret or key in the page');
    }
    assert.deepEqual(requests.map((r) => new URL(r.url()).pathname), ['/status'], 'the page makes no request of its own');
    assert.deepEqual(problems, [], 'no CSP violation or error');
    mkdirSync(join(root, 'target', 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  } finally {
    await page.close();
  }
});

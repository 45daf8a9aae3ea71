// OpenTelemetry through the service's own Meter and Tracer, with the real SDK
// (@opentelemetry/sdk-metrics and sdk-trace-base, in memory): a client span per token request
// with its retries as events, the token-request duration and errors, the counters of stats()
// and the current token's remaining life — and never a token or the secret in any of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { rejection, usePackage } from './helpers.mjs';

const SECRET = 'telemetry-secret-4711';
let emu, AutopayAuth;
usePackage(SECRET, (s) => ({ emu, AutopayAuth } = s));

class Reader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** A Meter and a Tracer of the real SDK, and what they recorded. */
function sdk() {
  const reader = new Reader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  return {
    telemetry: { meter: meterProvider.getMeter('test'), tracer: tracerProvider.getTracer('test') },
    spans: () => spans.getFinishedSpans(),
    /** `{ name: [{ value, attributes }] }` of everything collected now. */
    async metrics() {
      const { resourceMetrics } = await reader.collect();
      const out = {};
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const m of scope.metrics) {
          out[m.descriptor.name] = m.dataPoints.map((p) => ({ value: p.value, attributes: p.attributes }));
        }
      }
      return out;
    },
  };
}

const make = (telemetry, extra = {}) =>
  new AutopayAuth({ clientId: 'cid', clientSecret: SECRET, tokenUrl: emu.tokenUrl, telemetry, logger: null, ...extra });
const port = () => Number(new URL(emu.origin).port);

test('a cold burst: one client span and one duration for its one token request; counters and the remaining life from the reader', async (t) => {
  const o = sdk();
  const auth = make(o.telemetry);
  const tokens = await Promise.all(Array.from({ length: 20 }, () => auth.getToken()));
  for (let i = 0; i < 5; i++) await auth.getToken();
  const [span, ...more] = o.spans();
  assert.equal(more.length, 0, 'one span');
  assert.deepEqual([span.name, span.kind, span.status.code], ['POST', 2, 0]);
  assert.deepEqual(span.attributes, { 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': port(), 'http.response.status_code': 200 });
  assert.deepEqual(span.events, []);
  const m = await o.metrics();
  assert.deepEqual(m['autopay_auth.mints'], [{ value: 1, attributes: {} }]);
  assert.ok(m['autopay_auth.cache.hits'].some((p) => p.attributes['autopay_auth.cache.source'] === 'memory' && p.value >= 5));
  const [duration] = m['autopay_auth.token_request.duration'];
  assert.equal(duration.value.count, 1);
  assert.ok(duration.value.sum > 0 && duration.value.sum < 5, `${duration.value.sum} s`);
  const [left] = m['autopay_auth.token.remaining'];
  assert.ok(left.value > 86_000 && left.value <= 86_400, `${left.value} s left`);
  const everything = JSON.stringify({ spans: o.spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })), m });
  assert.ok(!everything.includes(tokens[0]) && !everything.includes(SECRET), 'no token, no secret');
  t.diagnostic(`exported: ${everything}`);
});

test('a retried token request is one span with a retry event, and one duration', async () => {
  const o = sdk();
  emu.fault({ status: 503, body: { error: 'temporarily_unavailable' } });
  await make(o.telemetry).getToken();
  const [span, ...more] = o.spans();
  assert.equal(more.length, 0);
  assert.deepEqual(span.events.map((e) => [e.name, e.attributes]), [['retry', { 'autopay_auth.attempt': 2, 'http.response.status_code': 503, 'error.type': 'server_error' }]]);
  assert.equal(span.attributes['http.response.status_code'], 200);
  assert.equal(emu.stats().tokenRequests, 2);
  const m = await o.metrics();
  assert.equal(m['autopay_auth.token_request.duration'][0].value.count, 1);
  assert.equal(m['autopay_auth.token_request.errors'], undefined, 'a retried attempt is not a failed request');
});

test('a refused token request: the span ends in error with error.type, and the error counter counts it by code', async () => {
  const o = sdk();
  emu.fault({ status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } });
  const auth = make(o.telemetry);
  await rejection(auth.getToken());
  const [span] = o.spans();
  assert.deepEqual([span.status.code, span.status.message, span.attributes['error.type'], span.attributes['http.response.status_code']], [2, 'access_denied', 'access_denied', 401]);
  const m = await o.metrics();
  assert.deepEqual(m['autopay_auth.token_request.errors'], [{ value: 1, attributes: { 'server.address': '127.0.0.1', 'server.port': port(), 'http.response.status_code': 401, 'error.type': 'access_denied' } }]);
  assert.deepEqual(m['autopay_auth.mints'], [{ value: 0, attributes: {} }]);
});

test('a meter alone or a tracer alone works; anything else is invalid_config naming it', async () => {
  const o = sdk();
  assert.ok(await make({ meter: o.telemetry.meter }).getToken());
  assert.ok(await make({ tracer: o.telemetry.tracer }).getToken());
  assert.equal(o.spans().length, 1);
  for (const [telemetry, option] of [[{ meter: {} }, 'telemetry.meter'], [{ tracer: { start() {} } }, 'telemetry.tracer'], ['otel', 'telemetry']]) {
    assert.throws(() => make(telemetry), (e) => e.code === 'invalid_config' && e.option === option, option);
  }
});

test('many clients on one meter: every span and measurement of a labelled client carries autopay_auth.client', async () => {
  const o = sdk();
  const { AutopayAuthClients } = await import('./helpers.mjs').then((h) => h.importPackage());
  const clients = new AutopayAuthClients({ telemetry: o.telemetry, logger: null, tokenUrl: emu.tokenUrl, clientId: 'cid', clientSecret: SECRET });
  clients.define('reports', { scope: 'reports' }).define('billing', { scope: 'billing' });
  await clients.get('reports').getToken();
  await clients.get('billing').getToken();
  const labels = o.spans().map((s) => s.attributes['autopay_auth.client']).sort();
  assert.deepEqual(labels, ['billing', 'reports'], 'one span each, labelled');
  const m = await o.metrics();
  const minted = m['autopay_auth.mints'].map((p) => [p.attributes['autopay_auth.client'], p.value]).sort();
  assert.deepEqual(minted, [['billing', 1], ['reports', 1]]);
  const durations = m['autopay_auth.token_request.duration'].map((p) => p.attributes['autopay_auth.client']).sort();
  assert.deepEqual(durations, ['billing', 'reports']);
  assert.ok(m['autopay_auth.token.remaining'].every((p) => ['billing', 'reports'].includes(p.attributes['autopay_auth.client'])));
});

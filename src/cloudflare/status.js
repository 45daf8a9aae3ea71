// The operator's page: the Worker's tokens at a glance, rendered from `/status.json` (every
// tenant's health and its minter's report) as one HTML document — inline SVG and CSS under a
// strict Content-Security-Policy (the style carries the nonce; no script, no image, no font, no
// request of its own). It shows timelines, counts and codes only: the report it is made from
// holds no token, secret, key or stored value, and every text in it is escaped here.

const HOUR = 3_600_000;
const HOURS = 48;

/** `&`, `<`, `>`, `"`, `'` escaped: safe in text and in attribute values. */
function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const time = (ms) => (typeof ms === 'number' ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '—');

/** `in 4 min`, `12 s ago`. */
function relative(ms, now) {
  if (typeof ms !== 'number') return '';
  const d = Math.round((ms - now) / 1000);
  const a = Math.abs(d);
  const text = a < 120 ? `${a} s` : a < 7200 ? `${Math.round(a / 60)} min` : `${Math.round(a / 3600)} h`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

/** The token's life as a bar: fresh until the refresh point, stale until it stops being served,
 * then the margin before expiry; a line at now. */
function timeline(token, now) {
  if (!token) return '<p class="muted" data-token="none">No token held.</p>';
  const { issued_at: from, refresh_at: refresh, usable_until: usable, expires_at: to } = token;
  const span = Math.max(1, to - from);
  const x = (t) => ((Math.min(Math.max(t, from), to) - from) / span) * 600;
  const seg = (a, b, cls, label) =>
    `<rect class="${cls}" x="${x(a).toFixed(1)}" y="8" width="${Math.max(0, x(b) - x(a)).toFixed(1)}" height="22"><title>${esc(label)}</title></rect>`;
  const nowX = x(now).toFixed(1);
  return `<svg class="timeline" viewBox="0 0 600 48" width="600" height="48" role="img" aria-label="token timeline" data-state="${esc(token.state)}">
${seg(from, refresh, 'fresh', `fresh: ${time(from)} → ${time(refresh)}`)}
${seg(refresh, usable, 'stale', `stale (refreshed in the background): ${time(refresh)} → ${time(usable)}`)}
${seg(usable, to, 'margin', `expiry margin (never served): ${time(usable)} → ${time(to)}`)}
<line class="now" x1="${nowX}" x2="${nowX}" y1="2" y2="36"/>
<text x="0" y="46">${esc(time(from))}</text><text x="600" y="46" text-anchor="end">${esc(time(to))}</text>
</svg>
<dl class="facts"><dt>state</dt><dd class="state-${esc(token.state)}">${esc(token.state)}</dd><dt>minted</dt><dd>${esc(time(from))} (${esc(relative(from, now))})</dd><dt>refresh point</dt><dd>${esc(time(refresh))} (${esc(relative(refresh, now))})</dd><dt>expires</dt><dd>${esc(time(to))} (${esc(relative(to, now))})</dd></dl>`;
}

/** Mints per hour over the last 48 hours, one bar per hour (empty hours included). */
function mints(ledger, now) {
  const byHour = new Map((ledger?.mints_per_hour ?? []).map(([h, n]) => [h, n]));
  const last = now - (now % HOUR);
  const hours = Array.from({ length: HOURS }, (_, i) => last - (HOURS - 1 - i) * HOUR);
  const top = Math.max(1, ...hours.map((h) => byHour.get(h) ?? 0));
  const w = 600 / HOURS;
  const bars = hours
    .map((h, i) => {
      const n = byHour.get(h) ?? 0;
      const height = (n / top) * 80;
      return `<rect class="bar" x="${(i * w + 1).toFixed(1)}" y="${(90 - height).toFixed(1)}" width="${(w - 2).toFixed(1)}" height="${height.toFixed(1)}" data-hour="${h}" data-mints="${n}"><title>${esc(time(h))}: ${n} mint${n === 1 ? '' : 's'}</title></rect>`;
    })
    .join('\n');
  const total = hours.reduce((s, h) => s + (byHour.get(h) ?? 0), 0);
  return `<svg class="mints" viewBox="0 0 600 110" width="600" height="110" role="img" aria-label="mints per hour, last 48 hours" data-total="${total}">
<line class="axis" x1="0" x2="600" y1="90.5" y2="90.5"/>
${bars}
<text x="0" y="106">48 h ago</text><text x="600" y="106" text-anchor="end">this hour</text><text x="600" y="10" text-anchor="end">max ${top}/h</text>
</svg><p class="muted">${total} mint${total === 1 ? '' : 's'} in 48 hours; last ${esc(time(ledger?.last_mint))}.</p>`;
}

function gate(g, now) {
  if (!g) return '<p class="ok" data-gate="open">Token requests allowed (no cooldown, hold or backoff).</p>';
  const why = [g.code, g.status ? `HTTP ${g.status}` : '', g.error].filter(Boolean).map(esc).join(' · ');
  return `<p class="warn" data-gate="${esc(g.kind)}"><strong>${esc(g.kind)}</strong> until ${esc(time(g.until))} (${esc(relative(g.until, now))}), ${esc(g.repeats)} in a row — because: <span class="reason">${why}</span></p>`;
}

function limits(report, now) {
  const rows = [];
  const b = report?.budget;
  if (b && b.allowed > 0 && b.allowed < Number.MAX_SAFE_INTEGER) {
    const left = b.allowed - Math.min(b.used, b.allowed);
    rows.push(`<tr data-limit="budget"><td>mint budget (the fleet\u2019s own)</td><td>${esc(b.allowed)}</td><td>${esc(b.used)}</td><td>${esc(left)}</td><td>sliding window</td></tr>`);
  }
  for (const q of report?.quotas ?? []) {
    const used = q.limit == null ? '—' : Math.max(0, q.limit - q.remaining);
    rows.push(`<tr data-limit="${esc(q.name)}"><td>${esc(q.name)} (declared by the vendor)</td><td>${q.limit == null ? 'not said' : esc(q.limit)}</td><td>${esc(used)}</td><td>${esc(q.remaining)}</td><td>${esc(time(q.reset_at))} (${esc(relative(q.reset_at, now))})</td></tr>`);
  }
  if (rows.length === 0) return '<p class="muted">No budget set and no quota declared by the token endpoint.</p>';
  return `<table class="limits"><tr><th>limit</th><th>size</th><th>used</th><th>left</th><th>resets</th></tr>${rows.join('')}</table>`;
}

function failures(ledger, now) {
  const list = ledger?.failures?.length ? ledger.failures : ledger?.last_failure ? [ledger.last_failure] : [];
  if (list.length === 0) return '<p class="ok">No failed token request.</p>';
  return `<ol class="failures">${[...list]
    .reverse()
    .map(([at, code]) => `<li data-code="${esc(code)}"><code>${esc(code)}</code> ${esc(time(at))} (${esc(relative(at, now))})</li>`)
    .join('')}</ol>`;
}

function counters(t) {
  const s = t.minter?.stats ?? {};
  const i = t.stats ?? {};
  const rows = [
    ['token requests (the minter)', s.mints],
    ['failed token requests', s.failures],
    ['background refreshes', s.refreshes],
    ['budget refusals', s.budgetRefusals],
    ['answers from this isolate\u2019s memory', i.memoryHits],
    ['answers from KV', i.kvHits],
    ['callers that joined a flight', i.coalesced],
    ['KV reads by this isolate', t.isolate?.kv_reads],
    ['calls to the minter from this isolate', t.isolate?.minter_calls],
  ].filter(([, v]) => typeof v === 'number');
  return `<table class="counters">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

function tenant(t, now) {
  const name = t.name ?? 'the Worker';
  const m = t.minter;
  const reached = m ? '' : '<p class="warn">The minter did not answer: its figures are missing.</p>';
  return `<section class="tenant" data-tenant="${esc(t.name ?? '')}">
<h2>${esc(name)}</h2>${reached}
<h3>Token</h3>${timeline(m?.token, now)}
<h3>Token requests</h3>${gate(m?.gate, now)}
<h3>Mints per hour</h3>${mints(m?.ledger, now)}
<h3>Budget and quotas</h3>${limits(m, now)}
<h3>Last failures</h3>${failures(m?.ledger, now)}
<h3>Counters</h3>${counters(t)}
</section>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430;background:#f7f8fa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0 0 8px}h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#5b6472;margin:16px 0 6px}
.tenant{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:16px 20px;margin:16px 0;max-width:660px}
.fresh{fill:#2f9e44}.stale{fill:#f59f00}.margin{fill:#c92a2a}.now{stroke:#1d2430;stroke-width:2}
.bar{fill:#3b5bdb}.axis{stroke:#adb5bd}svg text{font-size:10px;fill:#5b6472}
.facts{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:6px 0}.facts dt{color:#5b6472}.facts dd{margin:0}
.state-fresh{color:#2f9e44}.state-stale{color:#e67700}.state-expired{color:#c92a2a}
.ok{color:#2f9e44}.warn{color:#c92a2a}.muted{color:#5b6472}.reason{font-family:ui-monospace,monospace}
table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left}th{color:#5b6472;font-weight:500}
.failures{margin:0;padding-left:20px}`;

/** The page for `report` (`/status.json`'s answer), its style under `nonce`. */
export function renderStatus(report, nonce) {
  const now = typeof report?.now === 'number' ? report.now : Date.now();
  const sections = (report?.tenants ?? []).map((t) => tenant(t, now)).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>autopay-auth — tokens at a glance</title>
<style nonce="${esc(nonce)}">${STYLE}</style></head>
<body><h1>autopay-auth — tokens at a glance</h1><p class="muted">As of ${esc(time(now))}. This page holds no token or secret; <code>?format=json</code> gives the same report for machines.</p>
${sections}
</body></html>`;
}

/** The headers of the page: no caching, nothing but its own inline style. */
export function statusHeaders(nonce) {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
}

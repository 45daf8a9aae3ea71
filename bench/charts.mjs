// Horizontal bar charts as standalone SVG (no DOM, no canvas): one row per label, one bar per
// series in it, the value printed at the bar's end. Used by bench/report.mjs.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#f38020', '#6b7280', '#2563eb', '#16a34a']; // ours first: Cloudflare orange

/**
 * rows: [{ label, values: [number | null, ...] }] — one value per series (null: no bar);
 * series: names of the values; format(v): the printed value; log: a log10 axis (values > 0).
 * With one series, rows marked `ours` are drawn in the first colour and the others in the second.
 */
export function barChart({ title, subtitle = '', series, rows, format = String, log = false }) {
  const labelW = 340;
  const plotW = 430;
  const barH = 16;
  const gap = 4;
  const rowH = series.length * (barH + gap) + 10;
  const top = 56 + (series.length > 1 ? 22 : 0);
  const height = top + rows.length * rowH + 12;
  const width = labelW + plotW + 90;
  const values = rows.flatMap((r) => r.values).filter((v) => v !== null && v !== undefined);
  const max = Math.max(...values);
  const min = log ? Math.min(...values.filter((v) => v > 0)) : 0;
  const lo = log ? Math.floor(Math.log10(min)) : 0;
  const hi = log ? Math.ceil(Math.log10(max)) || 1 : max;
  const scale = (v) => {
    if (log) return (plotW * (Math.log10(Math.max(v, 10 ** lo)) - lo)) / Math.max(hi - lo, 1);
    return max === 0 ? 0 : (plotW * v) / max;
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600" fill="#111827">${esc(title)}</text>`,
    `<text x="12" y="40" fill="#4b5563">${esc(subtitle)}</text>`,
  ];
  if (series.length > 1) {
    let x = labelW;
    series.forEach((name, i) => {
      out.push(`<rect x="${x}" y="50" width="12" height="12" fill="${COLORS[i]}"/>`, `<text x="${x + 18}" y="60" fill="#111827">${esc(name)}</text>`);
      x += 40 + name.length * 7;
    });
  }
  rows.forEach((row, r) => {
    const y0 = top + r * rowH;
    out.push(`<text x="${labelW - 8}" y="${y0 + (series.length * (barH + gap)) / 2 + 4}" text-anchor="end" fill="#111827">${esc(row.label)}</text>`);
    row.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const y = y0 + i * (barH + gap);
      const w = Math.max(scale(v), 3);
      const color = series.length > 1 ? COLORS[i] : COLORS[row.ours ? 0 : 1];
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}" rx="2"/>`);
      out.push(`<text x="${(labelW + w + 5).toFixed(1)}" y="${y + barH - 4}" fill="#111827">${esc(format(v))}</text>`);
    });
  });
  out.push(`<line x1="${labelW}" y1="${top - 4}" x2="${labelW}" y2="${height - 10}" stroke="#9ca3af"/>`, '</svg>');
  return `${out.join('\n')}\n`;
}

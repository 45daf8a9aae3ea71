// What every benchmark script shares: statistics, the machine's load, and where results go
// (bench/results/<name>.json, read by bench/report.mjs to write BENCHMARKS.md and the charts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = join(root, 'bench', 'results');

/** The q-quantile (0..1) of `xs` (nearest rank). */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export const median = (xs) => quantile(xs, 0.5);

/** The 1-minute load average, with the core count: "1.52 / 2 cores". */
export const loadAverage = () => `${loadavg()[0].toFixed(2)} / ${cpus().length} cores`;

/** This machine, for the report. */
export function machine() {
  let os = '';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux
  }
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), os };
}

/** Writes one script's result, stamped with the machine. */
export function saveResult(name, result) {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify({ machine: machine(), ...result }, null, 2)}\n`);
}

/** A package's installed version. */
export const versionOf = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

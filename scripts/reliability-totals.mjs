// RELIABILITY.md's "Totals", counted from its own tables: `node scripts/reliability-totals.mjs`
// rewrites the paragraph; `--check` fails when it is not what the tables say (npm test runs it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// `--file PATH`: another copy (the test checks a changed one)
const given = process.argv.indexOf('--file');
const file = given > 0 ? process.argv[given + 1] : join(dirname(fileURLToPath(import.meta.url)), '..', 'RELIABILITY.md');
const SECTIONS = [
  ['Token endpoint faults', 'token-endpoint faults'],
  ['Fleets: instances sharing a store', 'fleet faults and races'],
  ['The shared store', 'store faults and attacks'],
  ['The npm package never crashes its host', 'hostile inputs to the npm package'],
  ['The Worker proxy', 'hostile inputs to the Worker proxy'],
  ['Fuzzing', 'fuzz targets'],
];

/** The data rows of the first table under `## heading`. */
function rows(text, heading) {
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`RELIABILITY.md has no section "${heading}"`);
  const next = text.indexOf('\n## ', start + 4);
  const lines = text.slice(start, next < 0 ? undefined : next).split('\n');
  const table = lines.filter((l) => l.startsWith('|'));
  return Math.max(0, table.length - 2); // less the header and its rule
}

function totals(text) {
  const counts = SECTIONS.map(([heading, what]) => `${rows(text, heading)} ${what}`);
  return `## Totals\n\nCounted from the tables above by \`scripts/reliability-totals.mjs\` (\`npm test\` checks it): ${counts.join(', ')}; plus the logging rule. The closing counts of \`npm test\`'s output give the tests.\n`;
}

const text = readFileSync(file, 'utf8');
const at = text.indexOf('\n## Totals\n');
const want = `${text.slice(0, at + 1)}${totals(text)}`;
if (process.argv.includes('--check')) {
  if (want !== text) {
    console.error('RELIABILITY.md: the Totals are not what the tables say; run node scripts/reliability-totals.mjs');
    process.exit(1);
  }
} else {
  writeFileSync(file, want);
}

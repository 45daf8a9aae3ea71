// One cold start, in this fresh process: import the client, construct it, get the first token.
// Prints one JSON line: {import, construct, first, total} in ms. Used by bench/peers.mjs.
//   node bench/cold-start.mjs <client name in bench/clients.mjs> <token URL> <pkg dir>
import { clients } from './clients.mjs';

const [name, tokenUrl, pkgDir] = process.argv.slice(2);
const t0 = performance.now();
const make = await clients[name].load(pkgDir);
const t1 = performance.now();
const get = make(tokenUrl);
const t2 = performance.now();
const token = await get();
const t3 = performance.now();
if (typeof token !== 'string' || token.length === 0) throw new Error('no token');
console.log(JSON.stringify({ import: t1 - t0, construct: t2 - t1, first: t3 - t2, total: t3 - t0 }));

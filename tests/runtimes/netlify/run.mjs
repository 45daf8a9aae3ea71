// Runs the unpacked bundle as Netlify's runtime would: its stage-2 entry gives the functions;
// `Netlify.env` reads the environment; each call gets a context with `waitUntil`. Calls the
// `token` function `N` times at once, then once more, and prints the answers as JSON.
//   deno run --no-config --import-map=<out>/import_map.json --allow-read --allow-env --allow-net=127.0.0.1 run.mjs <out> <N>
const [out, n] = Deno.args;
globalThis.Netlify = { env: { get: (name) => Deno.env.get(name) } };
const { functions } = await import(`file://${out}/stage2.js`);
const pending = [];
const context = { waitUntil: (promise) => pending.push(promise) };
const call = async () => (await functions.token(new Request('https://site.test/api/token'), context)).json();
const burst = await Promise.all(Array.from({ length: Number(n) }, call));
const after = await call();
await Promise.all(pending);
console.log(JSON.stringify({ burst, after }));

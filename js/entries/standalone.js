// No loader at all (`autopay-auth/standalone`): the wasm is inside this package's JS, deflated and
// base64, so it works where nothing can load a `.wasm` file next to the module — Netlify Edge
// Functions (whose bundler vendors npm packages into one file), and server bundles made with
// esbuild, webpack or rollup without a wasm rule. Inflating is synchronous, so `require` works
// too (standalone.cjs); the build bundles fflate's inflateSync in.
import { inflateSync } from 'fflate';
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';
import WASM from './wasm-deflated.cjs'; // (CommonJS, so that every bundler takes it as it is)

// Node, Deno and Bun inflate natively (getBuiltinModule: no import for a bundler to follow);
// elsewhere fflate, in JS
const builtin = globalThis.process?.getBuiltinModule;
const wasm = typeof builtin === 'function' ? builtin('node:zlib').inflateRawSync(builtin('node:buffer').Buffer.from(WASM, 'base64')) : inflateSync(fromBase64(WASM));
initSync({ module: new WebAssembly.Module(wasm) });

function fromBase64(text) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

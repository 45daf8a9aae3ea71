// No loader at all (`autopay-auth/standalone`): the wasm is inside this file, base64, so it
// works where nothing can load a `.wasm` file next to the module — Netlify Edge Functions
// (whose bundler vendors npm packages into one file), and server bundles made with esbuild,
// webpack or rollup without a wasm rule. About a third larger than the `.wasm` it carries.
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';
import WASM from './wasm-base64.cjs'; // (CommonJS, so that the require entry shares the one copy)

const bytes = typeof Uint8Array.fromBase64 === 'function' ? Uint8Array.fromBase64(WASM) : Uint8Array.from(atob(WASM), (c) => c.charCodeAt(0));
initSync({ module: new WebAssembly.Module(bytes) });

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

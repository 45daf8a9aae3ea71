// Vercel Edge Functions and the Next.js edge runtime (`edge-light`): compiling wasm from bytes
// at run time is not allowed there; the bundler turns `*.wasm?module` into a WebAssembly.Module
// at build time.
import wasm from './autopay_auth_bg.wasm?module';
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';

// Next.js's local edge sandbox (`next start`, `next build`) hands over a WebAssembly.Module
// compiled in the host's realm, which fails `instanceof` in this one: give it this realm's
// prototype (instantiation checks the module itself, not its prototype).
if (!(wasm instanceof WebAssembly.Module)) Object.setPrototypeOf(wasm, WebAssembly.Module.prototype);
initSync({ module: wasm });

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

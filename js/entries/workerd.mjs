// Cloudflare Workers (workerd): wrangler's CompiledWasm rule hands us a WebAssembly.Module.
import wasm from './autopay_auth_bg.wasm';
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';

initSync({ module: wasm });

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

// Browsers, bundlers and Deno: the wasm file is fetched next to this module (top-level await).
import init, { WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';

await init({ module_or_path: new URL('./autopay_auth_bg.wasm', import.meta.url) });

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

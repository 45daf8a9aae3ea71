// Node (and Bun) ESM entry: the wasm module is read from disk and instantiated synchronously.
import { readFileSync } from 'node:fs';
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi } from './api.js';

initSync({ module: readFileSync(new URL('./autopay_auth_bg.wasm', import.meta.url)) });

export const { AutopayAuth } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

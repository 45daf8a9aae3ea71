// Node (and Bun) ESM entry: the wasm module is read from disk and instantiated synchronously.
import { readFileSync } from 'node:fs';
import { initSync, WasmClient } from './autopay_auth.js';
import { makeApi, wasmMissing } from './api.js';

// (bundled into CommonJS, import.meta.url is gone: the wasm is looked for beside the bundle)
const wasm =
  import.meta.url !== undefined
    ? new URL('./autopay_auth_bg.wasm', import.meta.url)
    : `${typeof __dirname === 'string' ? __dirname : '.'}/autopay_auth_bg.wasm`;
let bytes;
try {
  bytes = readFileSync(wasm);
} catch (e) {
  throw wasmMissing(e, wasm);
}
initSync({ module: bytes });

export const { AutopayAuth, AutopayAuthClients } = makeApi(WasmClient);
export { AutopayAuthError } from './api.js';
export { MemoryKV } from './memory-kv.js';

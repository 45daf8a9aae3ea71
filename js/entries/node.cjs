// Node CommonJS entry (`require`): wasm-bindgen's nodejs glue loads the module from disk.
'use strict';
const { makeApi, AutopayAuthError, wasmMissing } = require('./api.cjs');
let glue;
try {
  glue = require('./autopay_auth_node.cjs');
} catch (e) {
  throw wasmMissing(e, require('node:path').join(__dirname, 'autopay_auth_bg.wasm'));
}
const { MemoryKV } = require('./memory-kv.cjs');

module.exports = { ...makeApi(glue.WasmClient), AutopayAuthError, MemoryKV };

// Node CommonJS entry (`require`): wasm-bindgen's nodejs glue loads the module from disk.
'use strict';
const { WasmClient } = require('./autopay_auth_node.cjs');
const { makeApi, AutopayAuthError } = require('./api.cjs');
const { MemoryKV } = require('./memory-kv.cjs');

module.exports = { ...makeApi(WasmClient), AutopayAuthError, MemoryKV };

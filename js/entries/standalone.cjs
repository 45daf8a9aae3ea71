// `require('autopay-auth/standalone')`: the ESM entry itself (require(esm), Node >= 22.12 and Bun),
// so CommonJS and ESM callers share one module and one copy of the wasm.
'use strict';
module.exports = require('./standalone.js');

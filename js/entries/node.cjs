// Node CommonJS entry (`require`): the ESM entry itself (require(esm), Node >= 22.12 and Bun), so
// `require` and `import` callers share one module, one wasm instance and one copy of the code.
'use strict';
module.exports = require('./node.mjs');

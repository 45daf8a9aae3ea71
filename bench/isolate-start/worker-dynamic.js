// The floor plus the Worker (glue and wasm) behind a dynamic import that this benchmark never
// reaches: does workerd still compile the wasm when the isolate starts?
let rust;
export class TokenMinter {
  async fetch() {
    rust ??= await import('../../build/index.js');
    return new Response('minter');
  }
}
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === '/rust') rust ??= await import('../../build/index.js');
    return new Response('ok');
  },
};

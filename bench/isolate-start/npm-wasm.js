// The floor plus the npm package's wasm in the bundle, never instantiated or called.
import wasm from '../../pkg/autopay_auth_bg.wasm';
export default { fetch: () => new Response(String(wasm instanceof WebAssembly.Module)) };
// (the same bindings as the Worker's — a KV namespace and this Durable Object class — so that
// Miniflare's set-up is the same for every variant)
export class TokenMinter {
  fetch() {
    return new Response('minter');
  }
}

// The floor: a Worker that carries nothing.
export default { fetch: () => new Response('ok') };
// (the same bindings as the Worker's — a KV namespace and this Durable Object class — so that
// Miniflare's set-up is the same for every variant)
export class TokenMinter {
  fetch() {
    return new Response('minter');
  }
}

// The strong JS Worker, with the Worker's Durable Object class beside it (the same bindings for
// every variant).
export { default } from '../baseline-worker.js';
export class TokenMinter {
  fetch() {
    return new Response('minter');
  }
}

// The Worker's entry module (the `main` of wrangler.toml): the front (serve.js) over the Rust
// Worker, and the `TokenMinter` Durable Object, in one Worker.
import RustWorker, { TokenMinter } from '../../build/index.js';
import { serve } from './serve.js';

export { TokenMinter };
export default serve(RustWorker);

// The entry module of a split deployment's front (deploy/split/front.toml): the same front
// (serve.js) over the Rust Worker built without the minter (feature `worker-front`), bound to the
// `TokenMinter` of the minter Worker (deploy/split/minter.toml). Its isolates compile none of the
// minter's code: the lifecycle of a mint, the token endpoint, client assertions, budgets.
import RustWorker from '../../build-front/index.js';
import { serve } from './serve.js';

export default serve(RustWorker);

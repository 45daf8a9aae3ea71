import { AutopayAuth, type KVNamespaceLike } from 'autopay-auth';

interface Env {
  AUTOPAY_CLIENT_ID: string;
  AUTOPAY_CLIENT_SECRET: string;
  TOKENS: KVNamespaceLike; // a Workers KV binding
}

let auth: AutopayAuth | undefined; // one client per isolate
export default {
  async fetch(request: Request, env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): Promise<Response> {
    auth ??= new AutopayAuth({ clientId: env.AUTOPAY_CLIENT_ID, clientSecret: env.AUTOPAY_CLIENT_SECRET, kv: env.TOKENS });
    // a background refresh this request starts outlives it
    const info = await auth.getTokenInfo({ waitUntil: ctx.waitUntil.bind(ctx) });
    return Response.json(info); // "network", then "memory"; a new isolate finds it in KV
  },
};

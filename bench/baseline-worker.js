// The peer for the Worker benchmark: a minimal hand-written JavaScript Worker doing the same
// proxy job with the same KV (a token record another process keeps fresh), plus a trivial route.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/trivial') return new Response('ok');
    if (request.headers.get('authorization') !== `Bearer ${env.CALLER_KEY}`) {
      return new Response('unauthorized', { status: 401 });
    }
    const record = JSON.parse(await env.AUTOPAY_TOKENS.get(env.TOKEN_KEY));
    const headers = new Headers(request.headers);
    headers.set('authorization', `Bearer ${record.access_token}`);
    headers.delete('cookie');
    return fetch(env.API_BASE + url.pathname + url.search, { method: request.method, headers, body: request.body });
  },
};

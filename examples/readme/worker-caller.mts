// A service with its own HTTP client, behind the autopay-auth Worker: the token from
// `GET /token`, kept for its Cache-Control max-age; a 401 from the API is reported (one report
// per refused token drops it for every caller) and the call made once more with a new token.
const worker = process.env.TOKEN_WORKER_URL!; // https://autopay-auth.<you>.workers.dev
const key = { authorization: `Bearer ${process.env.TOKEN_WORKER_KEY}` };
let cached: { token: string; until: number } | undefined;

async function token(): Promise<string> {
  if (cached && Date.now() < cached.until) return cached.token;
  const res = await fetch(`${worker}/token`, { headers: key });
  if (!res.ok) throw new Error(`token service: ${res.status} ${await res.text()}`);
  const { access_token } = (await res.json()) as { access_token: string };
  const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1] ?? 0);
  cached = { token: access_token, until: Date.now() + maxAge * 1000 };
  return access_token;
}

export async function callApi(url: string): Promise<Response> {
  const first = await token();
  const res = await fetch(url, { headers: { authorization: `Bearer ${first}` } });
  if (res.status !== 401) return res;
  cached = undefined;
  const reported = await fetch(`${worker}/token/refused`, {
    method: 'POST',
    headers: { ...key, 'content-type': 'application/json' },
    body: JSON.stringify({ access_token: first }),
  });
  const { result } = (await reported.json()) as { result: 'dropped' | 'not_held' | 'kept' };
  if (result === 'kept') return res; // the API refuses fresh tokens too: do not retry
  return fetch(url, { headers: { authorization: `Bearer ${await token()}` } });
}

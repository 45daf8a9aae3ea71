// One cold start, in this fresh process: import the client, construct it, get the first token.
// Prints one JSON line: {import, construct, first} in ms. Used by bench/peers.mjs.
//   node bench/cold-start.mjs <client name> <token URL> <pkg dir>
const [name, tokenUrl, pkgDir] = process.argv.slice(2);
const ID = 'bench';
const SECRET = 'bench-secret';
const AUDIENCE = 'https://api.autopay.io';
const origin = new URL(tokenUrl).origin;
const t0 = performance.now();
let make;
if (name === 'autopay-auth') {
  const { AutopayAuth } = await import(`${pkgDir}/node.mjs`);
  make = () => { const a = new AutopayAuth({ clientId: ID, clientSecret: SECRET, tokenUrl, logger: null }); return () => a.getToken(); };
} else if (name === 'hand-written') {
  make = () => () => fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: ID, client_secret: SECRET, audience: AUDIENCE, grant_type: 'client_credentials' }) }).then((r) => r.json()).then((b) => b.access_token);
} else if (name === '@badgateway/oauth2-client') {
  const { OAuth2Client, OAuth2Fetch } = await import('@badgateway/oauth2-client');
  make = () => { const client = new OAuth2Client({ clientId: ID, clientSecret: SECRET, tokenEndpoint: tokenUrl }); const f = new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials({ extraParams: { audience: AUDIENCE } }), scheduleRefresh: false }); return async () => (await f.getToken()).accessToken; };
} else if (name === 'simple-oauth2') {
  const { ClientCredentials } = await import('simple-oauth2');
  make = () => { const so = new ClientCredentials({ client: { id: ID, secret: SECRET }, auth: { tokenHost: origin, tokenPath: '/oauth/token' } }); return async () => (await so.getToken({ audience: AUDIENCE })).token.access_token; };
} else if (name === 'openid-client') {
  const openid = await import('openid-client');
  make = () => { const c = new openid.Configuration({ issuer: origin, token_endpoint: tokenUrl }, ID, SECRET); openid.allowInsecureRequests(c); return async () => (await openid.clientCredentialsGrant(c, { audience: AUDIENCE })).access_token; };
} else if (name === 'oauth4webapi') {
  const oauth = await import('oauth4webapi');
  make = () => { const as = { issuer: origin, token_endpoint: tokenUrl }; const client = { client_id: ID }; return async () => (await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(SECRET), new URLSearchParams({ audience: AUDIENCE }), { [oauth.allowInsecureRequests]: true }))).access_token; };
} else if (name === 'auth0') {
  const { TokenProvider } = await import('auth0');
  make = () => { const p = new TokenProvider({ domain: 'tenant.bench', clientId: ID, clientSecret: SECRET, audience: AUDIENCE, fetch: (u, i) => fetch(String(u).replace('https://tenant.bench', origin), i) }); return () => p.getAccessToken(); };
} else {
  throw new Error(`unknown client ${name}`);
}
const t1 = performance.now();
const get = make();
const t2 = performance.now();
const token = await get();
const t3 = performance.now();
if (typeof token !== 'string' || token.length === 0) throw new Error('no token');
console.log(JSON.stringify({ import: t1 - t0, construct: t2 - t1, first: t3 - t2, total: t3 - t0 }));

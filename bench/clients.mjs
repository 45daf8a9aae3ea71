// How each token client is used for client credentials, as its documentation recommends — one
// place for every benchmark. `load(pkgDir)` imports the library (so a cold start can time it)
// and returns `make(tokenUrl)`, which builds a client and returns `() => Promise<access token>`.
// The emulator must run in compat mode for the form-encoded clients.

export const ID = 'bench';
export const SECRET = 'bench-secret';
const AUDIENCE = 'https://api.autopay.io';
const origin = (tokenUrl) => new URL(tokenUrl).origin;

/** name → { label, npm (its package, or null), browser (an entry to bundle, or why not), load } */
export const clients = {
  'autopay-auth': {
    label: 'autopay-auth',
    npm: null,
    browser: 'measured from pkg/',
    load: async (pkgDir) => {
      const { AutopayAuth } = await import(`${pkgDir}/node.mjs`);
      return (tokenUrl) => {
        const auth = new AutopayAuth({ clientId: ID, clientSecret: SECRET, tokenUrl, logger: null });
        return () => auth.getToken();
      };
    },
  },
  'hand-written': {
    label: 'hand-written: Map + shared promise',
    npm: null,
    browser: null,
    load: async () => (tokenUrl) => {
      let hit = null;
      let inflight = null;
      return async () => {
        if (hit && hit.expiresAt - 1_000 > Date.now()) return hit.token;
        inflight ??= fetch(tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: ID, client_secret: SECRET, audience: AUDIENCE, grant_type: 'client_credentials' }),
        })
          .then((r) => r.json())
          .then((b) => ((hit = { token: b.access_token, expiresAt: Date.now() + b.expires_in * 1000 }), (inflight = null), b.access_token));
        return inflight;
      };
    },
  },
  '@badgateway/oauth2-client': {
    label: '@badgateway/oauth2-client (OAuth2Fetch)',
    npm: '@badgateway/oauth2-client',
    browser: "export { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client';",
    load: async () => {
      const { OAuth2Client, OAuth2Fetch } = await import('@badgateway/oauth2-client');
      return (tokenUrl) => {
        const client = new OAuth2Client({ clientId: ID, clientSecret: SECRET, tokenEndpoint: tokenUrl });
        const f = new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials({ extraParams: { audience: AUDIENCE } }), scheduleRefresh: false });
        return async () => (await f.getToken()).accessToken;
      };
    },
  },
  'simple-oauth2': {
    label: 'simple-oauth2 (getToken, expired() check)',
    npm: 'simple-oauth2',
    browser: null, // Node only
    load: async () => {
      const { ClientCredentials } = await import('simple-oauth2');
      return (tokenUrl) => {
        const so = new ClientCredentials({ client: { id: ID, secret: SECRET }, auth: { tokenHost: origin(tokenUrl), tokenPath: '/oauth/token' } });
        let token = null;
        return async () => {
          if (!token || token.expired(1)) token = await so.getToken({ audience: AUDIENCE });
          return token.token.access_token;
        };
      };
    },
  },
  'openid-client': {
    label: 'openid-client (clientCredentialsGrant)',
    npm: 'openid-client',
    browser: "export * from 'openid-client';",
    load: async () => {
      const openid = await import('openid-client');
      return (tokenUrl) => {
        const config = new openid.Configuration({ issuer: origin(tokenUrl), token_endpoint: tokenUrl }, ID, SECRET);
        openid.allowInsecureRequests(config);
        return async () => (await openid.clientCredentialsGrant(config, { audience: AUDIENCE })).access_token;
      };
    },
  },
  oauth4webapi: {
    label: 'oauth4webapi (clientCredentialsGrantRequest)',
    npm: 'oauth4webapi',
    browser: "export * from 'oauth4webapi';",
    load: async () => {
      const oauth = await import('oauth4webapi');
      return (tokenUrl) => {
        const as = { issuer: origin(tokenUrl), token_endpoint: tokenUrl };
        const client = { client_id: ID };
        return async () => {
          const params = new URLSearchParams({ audience: AUDIENCE });
          const options = { [oauth.allowInsecureRequests]: true };
          const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(SECRET), params, options);
          return (await oauth.processClientCredentialsResponse(as, client, response)).access_token;
        };
      };
    },
  },
  auth0: {
    label: 'auth0 (TokenProvider)',
    npm: 'auth0',
    browser: null, // Node-only SDK
    load: async () => {
      const { TokenProvider } = await import('auth0');
      return (tokenUrl) => {
        const tenant = 'https://tenant.bench';
        const provider = new TokenProvider({
          domain: 'tenant.bench',
          clientId: ID,
          clientSecret: SECRET,
          audience: AUDIENCE,
          fetch: (url, init) => fetch(String(url).replace(tenant, origin(tokenUrl)), init), // the emulator speaks http
        });
        return () => provider.getAccessToken();
      };
    },
  },
};

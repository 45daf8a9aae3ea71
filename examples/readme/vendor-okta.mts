import { AutopayAuth } from 'autopay-auth';

// Okta: a custom authorization server, a form body, a signed assertion (or client_secret_basic)
const auth = new AutopayAuth({
  tokenUrl: 'https://YOUR_ORG.okta.com/oauth2/default/v1/token',
  tokenRequest: 'form',
  clientId: process.env.OKTA_CLIENT_ID!,
  clientAuth: 'private_key_jwt',
  privateKey: JSON.parse(process.env.OKTA_PRIVATE_JWK!), // the JWK Okta generated, with its kid
  audience: null,
  scope: 'invoices:read',
  apiBaseUrl: 'https://api.example.com',
});

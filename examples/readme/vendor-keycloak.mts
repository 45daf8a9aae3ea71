import { AutopayAuth } from 'autopay-auth';

// Keycloak: a realm's token endpoint, a form body, HTTP Basic (or "Signed JWT": private_key_jwt)
const auth = new AutopayAuth({
  tokenUrl: 'https://keycloak.example.com/realms/YOUR_REALM/protocol/openid-connect/token',
  tokenRequest: 'form',
  clientAuth: 'client_secret_basic',
  clientId: process.env.KEYCLOAK_CLIENT_ID!,
  clientSecret: process.env.KEYCLOAK_CLIENT_SECRET!,
  audience: null,
  apiBaseUrl: 'https://api.example.com',
});

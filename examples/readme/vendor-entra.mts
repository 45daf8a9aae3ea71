import { AutopayAuth } from 'autopay-auth';

// Microsoft Entra ID (v2.0 endpoint): a form body, and the API's `.default` scope
const auth = new AutopayAuth({
  tokenUrl: `https://login.microsoftonline.com/${process.env.ENTRA_TENANT_ID}/oauth2/v2.0/token`,
  tokenRequest: 'form',
  clientId: process.env.ENTRA_CLIENT_ID!,
  clientSecret: process.env.ENTRA_CLIENT_SECRET!,
  audience: null,
  scope: 'api://YOUR_API_APP_ID/.default',
  apiBaseUrl: 'https://api.example.com',
});

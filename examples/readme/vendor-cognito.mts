import { AutopayAuth } from 'autopay-auth';

// Amazon Cognito: the user pool's domain, a form body, HTTP Basic, a resource server's scope
const auth = new AutopayAuth({
  tokenUrl: 'https://YOUR_DOMAIN.auth.eu-west-1.amazoncognito.com/oauth2/token',
  tokenRequest: 'form',
  clientAuth: 'client_secret_basic',
  clientId: process.env.COGNITO_CLIENT_ID!,
  clientSecret: process.env.COGNITO_CLIENT_SECRET!,
  audience: null,
  scope: 'https://api.example.com/invoices.read',
  apiBaseUrl: 'https://api.example.com',
});

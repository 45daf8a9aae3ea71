import { AutopayAuth } from 'autopay-auth';

// Auth0: its JSON body is Autopay's; the audience is your API's identifier
const auth = new AutopayAuth({
  tokenUrl: 'https://YOUR_TENANT.eu.auth0.com/oauth/token',
  clientId: process.env.AUTH0_CLIENT_ID!,
  clientSecret: process.env.AUTH0_CLIENT_SECRET!,
  audience: 'https://api.example.com',
  apiBaseUrl: 'https://api.example.com',
});

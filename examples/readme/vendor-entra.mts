import { AutopayAuth } from 'autopay-auth';

// Microsoft Entra ID (v2.0 endpoint): a certificate credential — the key signs a PS256
// assertion that names the certificate uploaded to the app registration by its SHA-256
// thumbprint (`x5t#S256`); a form body, the API's `.default` scope, no audience
const auth = new AutopayAuth({
  tokenUrl: `https://login.microsoftonline.com/${process.env.ENTRA_TENANT_ID}/oauth2/v2.0/token`,
  tokenRequest: 'form',
  clientId: process.env.ENTRA_CLIENT_ID!,
  clientAuth: 'private_key_jwt',
  privateKey: process.env.ENTRA_PRIVATE_KEY!, // PKCS#8 PEM
  privateKeyAlg: 'PS256',
  certificate: process.env.ENTRA_CERTIFICATE!, // its PEM (public)
  audience: null,
  scope: 'api://YOUR_API_APP_ID/.default',
  apiBaseUrl: 'https://api.example.com',
});

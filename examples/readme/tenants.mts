import { createClient } from 'redis';
import { AutopayAuthClients } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';

// one registry per process: every client shares the store (and the one wasm instance)
const redis = await createClient({ url: process.env.REDIS_URL }).connect();
const clients = new AutopayAuthClients({
  kv: redisKV(redis, { prefix: 'myapp:' }),
  max: 500, // at most 500 clients kept; the least recently used is let go
  clients: {
    // named credential sets: each its own token, budget and cooldown, labelled in events
    reporting: { tokenUrl: 'https://login.example.com/oauth2/token', tokenRequest: 'form', audience: null, scope: 'reports:read', clientId: process.env.REPORTING_ID!, clientSecret: process.env.REPORTING_SECRET!, apiBaseUrl: 'https://api.example.com' },
    billing: { tokenUrl: 'https://login.example.com/oauth2/token', tokenRequest: 'form', audience: null, scope: 'billing:write', clientId: process.env.BILLING_ID!, clientSecret: process.env.BILLING_SECRET!, apiBaseUrl: 'https://api.example.com' },
  },
});
const reports = await clients.get('reporting').fetch('/v1/reports');

// a SaaS calling a vendor for each merchant: one client per merchant's credentials, looked up
// per request (the same configuration is the same client, however often asked)
function forMerchant(m: { id: string; clientId: string; clientSecret: string }) {
  return clients.get({ clientId: m.clientId, clientSecret: m.clientSecret, label: `merchant-${m.id}` });
}
const token = await forMerchant({ id: '42', clientId: 'm42', clientSecret: process.env.M42_SECRET! }).getToken();
console.log(reports.status, token.length, clients.size);

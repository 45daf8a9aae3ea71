import { AutopayAuth } from 'autopay-auth';

const auth = new AutopayAuth({
  clientId: process.env.AUTOPAY_CLIENT_ID!,
  clientSecret: process.env.AUTOPAY_CLIENT_SECRET!, // never logged, stored or returned
});
// an Autopay API call with the token; after a 401, one new token and one retry
const res = await auth.fetch('/customer_club/members?limit=10');
const token = await auth.getToken(); // or the token itself, for your own HTTP client
console.log(res.status, token.length, auth.stats().mints); // 1: later calls are served from memory

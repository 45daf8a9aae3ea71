// An AWS Lambda function (Node.js 22 or later) that calls an API with a client-credentials
// token, shared by every instance of the function through a DynamoDB table. Bundle it as
// Lambda tooling does — esbuild, under CDK's NodejsFunction or SAM — into one file:
//
//   esbuild handler.mjs --bundle --platform=node --target=node22 --format=cjs \
//     --main-fields=module,main --external:@aws-sdk/* --outfile=dist/index.js
//
// Settings (the function's environment): AUTOPAY_CLIENT_ID and AUTOPAY_CLIENT_SECRET (from a
// secret store, never in code), AUTOPAY_TOKENS_TABLE (a table with a string partition key `pk`
// and TTL on `expiresAt`), AUTOPAY_TOKEN_URL (unset: Autopay's own endpoint) and
// AUTOPAY_API_BASE (where the API calls go).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
// `autopay-auth/standalone` carries its wasm inside the JavaScript, so the bundle is one file:
// the default entry reads a .wasm beside it, which a bundler leaves behind
import { AutopayAuth } from 'autopay-auth/standalone';
import { dynamoKV } from 'autopay-auth/dynamodb';

// Made once per instance, at its cold start, outside the handler: the instance keeps the token
// in memory between invocations, and every instance shares one through the table.
const auth = new AutopayAuth({
  clientId: process.env.AUTOPAY_CLIENT_ID,
  clientSecret: process.env.AUTOPAY_CLIENT_SECRET,
  tokenUrl: process.env.AUTOPAY_TOKEN_URL,
  apiBaseUrl: process.env.AUTOPAY_API_BASE,
  kv: dynamoKV(new DynamoDBClient({}), { table: process.env.AUTOPAY_TOKENS_TABLE }),
  // Lambda makes new instances freely: while the table cannot be reached, fail rather than
  // let each new instance mint a token of its own
  storeOutage: 'fail',
});

export const handler = async (event) => {
  // Lambda freezes the process as soon as the handler returns, so a refresh left running in
  // the background would wait, frozen, until the next invocation. It is handed to `waitUntil`
  // instead and awaited before returning (a refresh starts only once the token is stale: one
  // invocation in many pays for it).
  const refreshes = [];
  const waitUntil = (promise) => refreshes.push(promise);
  try {
    const token = await auth.getToken({ waitUntil });
    const res = await fetch(new URL(event?.path ?? '/v1/ping', process.env.AUTOPAY_API_BASE), {
      headers: { authorization: `Bearer ${token}` },
    });
    return { statusCode: res.status, body: await res.text() };
  } catch (e) {
    // a typed error: its code and, when the token service said, how long to wait
    return { statusCode: 503, body: JSON.stringify({ error: e.code ?? 'error', retryAfter: e.retryAfter ?? null }) };
  } finally {
    await Promise.allSettled(refreshes);
  }
};

// ESM consumer under `module: node16` (and, as .ts, under `moduleResolution: bundler`).
import { AutopayAuth, AutopayAuthError, MemoryKV } from 'autopay-auth';
import type { AutopayAuthErrorCode, AutopayAuthOptions, AutopayAuthStats, KVNamespaceLike, TokenInfo, TokenSource } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';
import { denoKV } from 'autopay-auth/deno-kv';
import { upstashKV } from 'autopay-auth/upstash';
import { dynamoKV } from 'autopay-auth/dynamodb';
import { Redis } from '@upstash/redis';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const kv: KVNamespaceLike = new MemoryKV();
const options: AutopayAuthOptions = { clientId: 'id', clientSecret: 'secret', kv, timeoutMs: 5_000, refreshRatio: 0.75 };
// any OAuth 2.0 endpoint: a form body, a signed assertion, no audience, a scope and resources
export const signed = new AutopayAuth({
  clientId: 'id',
  clientAuth: 'private_key_jwt',
  privateKey: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd', kid: 'k' },
  privateKeyAlg: 'ES256',
  tokenRequest: 'form',
  tokenUrl: 'https://as.example.com/token',
  audience: null,
  scope: 'read write',
  resource: ['https://api.example.com'],
  defaultExpiresInSec: 3600,
});
export const basic = new AutopayAuth({ clientId: 'id', clientSecret: 's', clientAuth: 'client_secret_basic', resource: 'https://api.example.com' });
const auth = new AutopayAuth(options);

export async function use(): Promise<number> {
  const token: string = await auth.getToken();
  const info: TokenInfo = await auth.getTokenInfo();
  const source: TokenSource = info.source;
  const expiresAt: number = info.expiresAt;
  const scope: string | null = info.scope;
  const res: Response = await auth.fetch('/customer_club/members', { method: 'GET' });
  await auth.invalidate();
  const stats: AutopayAuthStats = auth.stats();
  try {
    await auth.getToken();
  } catch (e) {
    if (e instanceof AutopayAuthError) {
      const code: AutopayAuthErrorCode = e.code;
      const status: number | null = e.status;
      const retryAfter: number | null = e.retryAfter;
      void [code, status, retryAfter, e.description, e.error, e.option];
    }
  }
  void [token, source, scope, res.status, stats.mints];
  return expiresAt;
}

// adapters satisfy the KV interface, with the atomic put
const fromRedis: KVNamespaceLike = redisKV({ sendCommand: async (args: string[]) => args.length });
const fromRedisCall = redisKV({ call: async (command: string) => command }, { prefix: 'app:' });
export const lock: Promise<boolean> = fromRedisCall.putIfAbsent('k', 'v', { ttlMs: 1_000 });
declare const denoKvHandle: Parameters<typeof denoKV>[0];
const fromDeno: KVNamespaceLike = denoKV(denoKvHandle, { prefix: ['my-app'] });
const fromUpstash: KVNamespaceLike = upstashKV(new Redis({ url: 'https://example.upstash.io', token: 't' }), { prefix: 'app:' });
const fromDynamo = dynamoKV(new DynamoDBClient({}), { table: 'tokens', ttlAttribute: 'ttl' });
export const shortest: number = fromDynamo.minExpirationTtl + fromUpstash.minExpirationTtl!;
void [fromRedis, fromDeno];

// what must not compile
// @ts-expect-error a clientSecret (or a private key) is required
new AutopayAuth({ clientId: 'id' });
// @ts-expect-error private_key_jwt needs its key
new AutopayAuth({ clientId: 'id', clientAuth: 'private_key_jwt' });
// @ts-expect-error a secret is not used with private_key_jwt
new AutopayAuth({ clientId: 'id', clientAuth: 'private_key_jwt', privateKey: '-----BEGIN PRIVATE KEY-----', clientSecret: 's' });
// @ts-expect-error a key is only used with private_key_jwt
new AutopayAuth({ clientId: 'id', clientSecret: 's', privateKey: '-----BEGIN PRIVATE KEY-----' });
// @ts-expect-error the body is 'json' or 'form'
new AutopayAuth({ clientId: 'id', clientSecret: 's', tokenRequest: 'xml' });
// @ts-expect-error unknown options are refused (also at run time)
new AutopayAuth({ clientId: 'id', clientSecret: 's', clientsecret: 'typo' });
// @ts-expect-error timeoutMs is a number
new AutopayAuth({ clientId: 'id', clientSecret: 's', timeoutMs: '5s' });
// @ts-expect-error the source is one of three strings
export const wrong: TokenSource = 'disk';
// @ts-expect-error the DynamoDB adapter needs its table
dynamoKV(new DynamoDBClient({}), {});
// @ts-expect-error the Upstash adapter takes an @upstash/redis client, not a URL
upstashKV('https://example.upstash.io');
// @ts-expect-error a KV needs get, put and delete
new AutopayAuth({ clientId: 'id', clientSecret: 's', kv: { get: async () => null } });

// CommonJS consumer under `module: node16`: resolves the `require` condition (index.d.cts).
import { AutopayAuth, AutopayAuthError, MemoryKV } from 'autopay-auth';
import type { TokenInfo } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';
import { upstashKV } from 'autopay-auth/upstash';
import { Redis } from '@upstash/redis';

const auth = new AutopayAuth({ clientId: 'id', clientSecret: 'secret', kv: new MemoryKV() });
export async function use(): Promise<string> {
  const info: TokenInfo = await auth.getTokenInfo();
  return info.accessToken;
}
export const isError = (e: unknown): boolean => e instanceof AutopayAuthError && e.code === 'timeout';
export const kv = redisKV({ sendCommand: async () => 'OK' });
export const upstash = upstashKV(new Redis({ url: 'https://example.upstash.io', token: 't' }));
// @ts-expect-error getToken takes no argument
auth.getToken('now');

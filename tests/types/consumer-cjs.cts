// CommonJS consumer under `module: node16`: resolves the `require` condition (index.d.cts).
import { AutopayAuth, AutopayAuthError, MemoryKV } from 'autopay-auth';
import type { TokenInfo } from 'autopay-auth';
import { redisKV } from 'autopay-auth/redis';

const auth = new AutopayAuth({ clientId: 'id', clientSecret: 'secret', kv: new MemoryKV() });
export async function use(): Promise<string> {
  const info: TokenInfo = await auth.getTokenInfo();
  return info.accessToken;
}
export const isError = (e: unknown): boolean => e instanceof AutopayAuthError && e.code === 'timeout';
export const kv = redisKV({ sendCommand: async () => 'OK' });
// @ts-expect-error getToken takes no argument
auth.getToken('now');

// Opens a sealed store record with Node's own crypto — an implementation independent of the
// library's Rust one, so the tests check the documented format itself: `v2.` + base64url(nonce
// ‖ ciphertext ‖ tag), AES-256-GCM, key = HKDF-SHA256(secret, salt, info = cache key), and the
// cache key as associated data.
import { createDecipheriv, hkdfSync } from 'node:crypto';

const SALT = 'autopay-auth sealed token record v2';

/** The record in `value`, or null when it does not open. */
export function openSealed(value, secret, cacheKey) {
  if (typeof value !== 'string' || !value.startsWith('v2.')) return null;
  const raw = Buffer.from(value.slice(3), 'base64url');
  if (raw.length < 28) return null;
  const key = Buffer.from(hkdfSync('sha256', secret, SALT, cacheKey, 32));
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(cacheKey));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  try {
    const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  } catch {
    return null;
  }
}

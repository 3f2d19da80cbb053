import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Kv } from '../store/kv.js';

const KEY = 'device_token';
const FORMAT_V1 = 1;
const AAD = Buffer.from('vigil device token');

/** The device token, AES-256-GCM encrypted in the agent database. */
export class TokenVault {
  constructor(
    private readonly kv: Kv,
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new RangeError('token key must be 32 bytes');
  }

  save(token: string, now: number): void {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(AAD);
    const ct = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    this.kv.set(KEY, Buffer.concat([Buffer.from([FORMAT_V1]), iv, cipher.getAuthTag(), ct]), now);
  }

  /** The stored token; throws TOKEN_UNREADABLE when it was encrypted under another key. */
  load(): string | undefined {
    const blob = this.kv.get(KEY);
    if (!blob) return undefined;
    if (blob[0] !== FORMAT_V1 || blob.length < 1 + 12 + 16) throw Object.assign(new Error('stored token has an unknown format'), { code: 'TOKEN_UNREADABLE' });
    const decipher = createDecipheriv('aes-256-gcm', this.key, blob.subarray(1, 13));
    decipher.setAAD(AAD);
    decipher.setAuthTag(blob.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(blob.subarray(29)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw Object.assign(new Error('stored token cannot be decrypted on this device', { cause: err }), { code: 'TOKEN_UNREADABLE' });
    }
  }

  clear(): void {
    this.kv.delete(KEY);
  }
}

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { VigilError } from '../lib/errors.js';
import type { Kv } from './kv.js';

const FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedEntry {
  /** The kv key it is stored under. */
  key: string;
  /** Additional authenticated data: binds the blob to its purpose, so one cannot pass for another. */
  aad: string;
  /** The error code when it cannot be read (another key, another format). */
  unreadableCode: string;
}

/**
 * One secret string in the kv table, AES-256-GCM encrypted under the device key:
 * [format 1][iv 12][tag 16][ciphertext]. The device token and the camera credentials use it.
 */
export class SealedValue {
  readonly #aad: Buffer;

  constructor(
    private readonly kv: Kv,
    private readonly key: Buffer,
    private readonly entry: SealedEntry,
  ) {
    if (key.length !== 32) throw new RangeError('the sealing key must be 32 bytes');
    this.#aad = Buffer.from(entry.aad);
  }

  save(plaintext: string, now: number): void {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(this.#aad);
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    this.kv.set(this.entry.key, Buffer.concat([Buffer.from([FORMAT_V1]), iv, cipher.getAuthTag(), ct]), now);
  }

  /** The stored value; throws `unreadableCode` when it was sealed under another key or is damaged. */
  load(): string | undefined {
    const blob = this.kv.get(this.entry.key);
    if (!blob) return undefined;
    const { unreadableCode: code } = this.entry;
    if (blob[0] !== FORMAT_V1 || blob.length < 1 + IV_BYTES + TAG_BYTES) throw new VigilError(code, `stored ${this.entry.key} has an unknown format`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, blob.subarray(1, 1 + IV_BYTES));
    decipher.setAAD(this.#aad);
    decipher.setAuthTag(blob.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new VigilError(code, `stored ${this.entry.key} cannot be decrypted on this device`, { cause: err });
    }
  }

  clear(): void {
    this.kv.delete(this.entry.key);
  }
}

import type { Kv } from '../store/kv.js';
import { SealedValue } from '../store/sealed-kv.js';

/** The device token, AES-256-GCM encrypted in the agent database (store/sealed-kv.ts). */
export class TokenVault {
  readonly #sealed: SealedValue;

  constructor(kv: Kv, key: Buffer) {
    if (key.length !== 32) throw new RangeError('token key must be 32 bytes');
    this.#sealed = new SealedValue(kv, key, { key: 'device_token', aad: 'vigil device token', unreadableCode: 'TOKEN_UNREADABLE' });
  }

  save(token: string, now: number): void {
    this.#sealed.save(token, now);
  }

  /** The stored token; throws TOKEN_UNREADABLE when it was encrypted under another key. */
  load(): string | undefined {
    return this.#sealed.load();
  }

  clear(): void {
    this.#sealed.clear();
  }
}

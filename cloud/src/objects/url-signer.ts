import { createHmac, timingSafeEqual } from 'node:crypto';

/** The fields a presigned object URL commits to. */
export interface SignedPut {
  method: 'PUT';
  key: string;
  /** Expiry, Unix epoch milliseconds. */
  exp: number;
  bytes: number;
  sha256: string;
}

/**
 * HMAC-SHA256 signatures for presigned object URLs, the way S3 signs them: whoever holds a
 * URL may do exactly the signed request (this method, this key, these bytes) until it expires,
 * without any other credential.
 */
export class UrlSigner {
  readonly #key: Buffer;

  constructor(key: string | Buffer) {
    this.#key = Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8');
  }

  sign(p: SignedPut): string {
    // Newline-separated: none of the fields can contain a newline (keys are validated).
    const canonical = [p.method, p.key, String(p.exp), String(p.bytes), p.sha256].join('\n');
    return createHmac('sha256', this.#key).update(canonical).digest('base64url');
  }

  verify(p: SignedPut, sig: string): boolean {
    const expected = Buffer.from(this.sign(p), 'base64url');
    const given = Buffer.from(sig, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

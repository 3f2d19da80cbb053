// Dashboard passwords, stored as self-describing scrypt strings: scrypt$N$r$p$salt$hash.
// node:crypto's scrypt is built in, memory-hard and enough here; bcrypt or argon2 would add a
// native package to build for every target for no gain at this scale. The parameters travel
// with each hash, so raising them later leaves old hashes verifiable.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { CloudError } from '../errors.js';

export const MIN_PASSWORD_CHARS = 10;
/** Long enough for any passphrase; a bound so a huge body cannot make scrypt hash megabytes. */
export const MAX_PASSWORD_CHARS = 1024;

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** 2^15 × 8 × 128 bytes = 32 MiB; about 0.2 s per hash measured on a loaded 2-core machine. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Bounds on what a stored string may ask for, so a tampered row cannot exhaust the server. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

/** Throws PASSWORD_REJECTED with the reason when a new password is not acceptable. */
export function checkNewPassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_CHARS) {
    throw new CloudError('PASSWORD_REJECTED', `the password is too short: at least ${MIN_PASSWORD_CHARS} characters`);
  }
  if (password.length > MAX_PASSWORD_CHARS) throw new CloudError('PASSWORD_REJECTED', `the password is too long: at most ${MAX_PASSWORD_CHARS} characters`);
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  checkNewPassword(password);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, HASH_BYTES, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), hash.toString('base64')].join('$');
}

/** True when `password` matches `stored`; false for a wrong password or a malformed string. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed || password.length > MAX_PASSWORD_CHARS) return false;
  const actual = await derive(password, parsed.salt, parsed.hash.length, parsed.params);
  return timingSafeEqual(actual, parsed.hash);
}

function parseHash(stored: string): { params: ScryptParams; salt: Buffer; hash: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d{1,8}$/.test(x!) ? Number(x) : NaN)) as [number, number, number];
  const powerOfTwo = N > 1 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > MAX_N || !(r >= 1 && r <= MAX_R) || !(p >= 1 && p <= MAX_P)) return null;
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64.test(parts[4]!) || !b64.test(parts[5]!)) return null;
  const salt = Buffer.from(parts[4]!, 'base64');
  const hash = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8 || hash.length < 16) return null;
  return { params: { N, r, p }, salt, hash };
}

function derive(password: string, salt: Buffer, bytes: number, { N, r, p }: ScryptParams): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is exactly the default's need, so
  // give it room (twice the need) rather than fail on a slightly larger setting.
  const opts: ScryptOptions = { N, r, p, maxmem: 2 * 128 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, bytes, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// Identifiers and secrets. Record ids are opaque random strings (never sequential, so they
// reveal nothing about how many devices, cameras or frames exist).

export const DEVICE_TOKEN_PREFIX = 'vgl_';
const DEVICE_TOKEN_BYTES = 32;
const ID_BYTES = 12;

export type IdKind = 'site' | 'dev' | 'cam' | 'frm' | 'upl' | 'alt' | 'ntf' | 'rel' | 'dep' | 'bat' | 'evt' | 'usr';

export function newId(kind: IdKind): string {
  return `${kind}_${randomBytes(ID_BYTES).toString('base64url')}`;
}

export function newDeviceToken(): string {
  return DEVICE_TOKEN_PREFIX + randomBytes(DEVICE_TOKEN_BYTES).toString('base64url');
}

/**
 * Device tokens and claim codes are stored only as their SHA-256. Both are random with enough
 * entropy (256 bits for tokens, 60 for short-lived one-time codes) that guessing is hopeless,
 * so a fast hash is right here: slow password hashes only help against low-entropy secrets,
 * and would cost CPU on every device request.
 */
export function sha256Hex(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Constant-time string comparison (through fixed-length digests, so lengths do not leak). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

// Crockford base32: no I, L, O, U, so a code read aloud or copied by hand survives.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CLAIM_CODE_CHARS = 12;

/** A one-time claim code a technician types: 12 Crockford base32 characters (60 bits), XXXX-XXXX-XXXX. */
export function newClaimCode(): string {
  const bytes = randomBytes(CLAIM_CODE_CHARS);
  let s = '';
  for (let i = 0; i < CLAIM_CODE_CHARS; i++) s += CROCKFORD[bytes[i]! & 31];
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
}

/** Canonical form of a typed code: case, dashes, spaces and look-alike letters do not matter. */
export function normalizeClaimCode(code: string): string {
  return code
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
}

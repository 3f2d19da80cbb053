// Dashboard sessions: a random 256-bit token in an HttpOnly cookie, kept in the database only
// as its SHA-256 (like device tokens: random enough that a fast hash is right). Setting a new
// password or disabling a user ends its sessions (the store does that).
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../lib/ids.js';
import type { UserRecord, UserStore } from '../store/user-types.js';

export const SESSION_COOKIE = 'vigil_session';
/** How long a login lasts (a config option `sessionTtlS` is planned; until then, this). */
export const SESSION_TTL_MS = 7 * 86_400_000;
const SESSION_TOKEN_BYTES = 32;

export async function startSession(users: UserStore, userId: string, now: number, ttlMs = SESSION_TTL_MS): Promise<{ token: string; expiresAt: number }> {
  const token = randomBytes(SESSION_TOKEN_BYTES).toString('base64url');
  const expiresAt = now + ttlMs;
  await users.deleteExpiredSessions(now);
  await users.createSession({ tokenHash: sha256Hex(token), userId, createdAt: now, expiresAt });
  return { token, expiresAt };
}

/** The enabled user of an unexpired session, or null. */
export async function userOfSession(users: UserStore, token: string, now: number): Promise<UserRecord | null> {
  return users.sessionUser(sha256Hex(token), now);
}

export async function endSession(users: UserStore, token: string): Promise<void> {
  await users.deleteSession(sha256Hex(token));
}

/** The Set-Cookie value for a session (or, with token '' and maxAgeS 0, its removal). */
export function sessionCookie(token: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

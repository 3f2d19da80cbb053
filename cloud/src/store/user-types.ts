// People who log in to the dashboard, and their sessions. Passwords are stored only as scrypt
// strings (users/passwords.ts); sessions only as the hash of their cookie token.

export type UserRole = 'admin';

export interface UserRecord {
  id: string;
  name: string;
  role: UserRole;
  createdAt: number;
  disabledAt: number | null;
  /** Wrong passwords since the last good one. */
  failedLogins: number;
  /** Logins are refused until then (too many wrong passwords). */
  lockedUntil: number | null;
}

export interface UserWithPassword extends UserRecord {
  passwordHash: string;
}

export interface UserStore {
  /** Creates the user; false when the name (case-insensitive) is taken. */
  createUser(u: { id: string; name: string; passwordHash: string; role: UserRole; now: number }): Promise<boolean>;
  /** Sets a new password, re-enables the user, clears the lockout and ends its sessions; false if unknown. */
  setPassword(name: string, passwordHash: string, now: number): Promise<boolean>;
  /** Disables the user and ends its sessions; false if unknown. */
  disableUser(name: string, now: number): Promise<boolean>;
  findUser(name: string): Promise<UserWithPassword | null>;
  listUsers(): Promise<UserRecord[]>;
  /**
   * Counts a wrong password and, in the same transaction, sets the lock `lockFor` gives for the
   * new count (null: no new lock), so parallel wrong guesses cannot each see a stale count.
   */
  recordLoginFailure(userId: string, lockFor: (failures: number) => number | null): Promise<{ failures: number; lockedUntil: number | null }>;
  recordLoginSuccess(userId: string): Promise<void>;
  createSession(s: { tokenHash: string; userId: string; createdAt: number; expiresAt: number }): Promise<void>;
  /** The enabled user of an unexpired session, or null. Notes when the session was last used. */
  sessionUser(tokenHash: string, now: number): Promise<UserRecord | null>;
  deleteSession(tokenHash: string): Promise<void>;
  /** Forgets sessions that have expired (they already no longer count). */
  deleteExpiredSessions(now: number): Promise<void>;
}

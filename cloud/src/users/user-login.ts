// Checks a person's name and password for the dashboard, and locks a name after repeated wrong
// passwords. An unknown or disabled name costs the same scrypt run as a real one and gets the
// same answer, so neither the reply nor its timing says which names exist.
import { CloudError } from '../errors.js';
import type { UserRecord, UserStore } from '../store/user-types.js';
import { hashPassword, verifyPassword } from './passwords.js';

/** Wrong passwords in a row before the name is locked. */
export const LOCK_AFTER_FAILURES = 5;
export const FIRST_LOCK_MS = 60_000;
export const MAX_LOCK_MS = 15 * 60_000;

/** When a user with `failures` wrong passwords in a row is locked until (null: not locked). */
export function lockedUntil(failures: number, now: number): number | null {
  if (failures < LOCK_AFTER_FAILURES) return null;
  const doublings = Math.min(failures - LOCK_AFTER_FAILURES, 10);
  return now + Math.min(FIRST_LOCK_MS * 2 ** doublings, MAX_LOCK_MS);
}

/** LOGIN_LOCKED (429) with how long to wait, for a Retry-After header. */
export class LoginLockedError extends CloudError {
  readonly retryAfterS: number;

  constructor(retryAfterMs: number, prefix = '') {
    const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super('LOGIN_LOCKED', `${prefix}too many wrong passwords: this user is locked, try again in ${s} s`);
    this.retryAfterS = s;
  }
}

const WRONG = 'wrong user name or password';

export class UserLogin {
  readonly #users: UserStore;
  readonly #now: () => number;
  #dummyHash: Promise<string> | undefined;

  constructor(users: UserStore, now: () => number) {
    this.#users = users;
    this.#now = now;
  }

  /** The user, when the name and password are right; LOGIN_FAILED or LOGIN_LOCKED otherwise. */
  async login(name: string, password: string): Promise<UserRecord> {
    const user = await this.#users.findUser(name.trim());
    const now = this.#now();
    if (user && user.lockedUntil !== null && user.lockedUntil > now) throw new LoginLockedError(user.lockedUntil - now);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.#dummy()));
    if (!user || user.disabledAt !== null) throw new CloudError('LOGIN_FAILED', WRONG);
    if (!ok) {
      const { lockedUntil: until } = await this.#users.recordLoginFailure(user.id, (failures) => lockedUntil(failures, this.#now()));
      if (until !== null) throw new LoginLockedError(until - this.#now(), `${WRONG}; `);
      throw new CloudError('LOGIN_FAILED', WRONG);
    }
    await this.#users.recordLoginSuccess(user.id);
    const { passwordHash: _, ...record } = user;
    return { ...record, failedLogins: 0, lockedUntil: null };
  }

  /** A real hash of a random password, made once, for names that do not exist. */
  #dummy(): Promise<string> {
    this.#dummyHash ??= hashPassword(`no such user ${Math.random()}`);
    return this.#dummyHash;
  }
}

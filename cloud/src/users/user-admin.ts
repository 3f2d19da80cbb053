// Managing dashboard users from the command line (vigil-cloud user ...): there is no sign-up
// page, so whoever runs the server decides who may log in.
import { CloudError, ConfigError } from '../errors.js';
import { newId } from '../lib/ids.js';
import type { UserRecord, UserStore } from '../store/user-types.js';
import { hashPassword } from './passwords.js';

export const MAX_USER_NAME = 64;
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

/** A user name as typed: letters, digits and . _ @ - (case does not matter when logging in). */
export function checkUserName(name: string): string {
  if (!USER_NAME.test(name) || name.length > MAX_USER_NAME) {
    throw new ConfigError(`user name "${name}": use 1-${MAX_USER_NAME} letters, digits, '.', '_', '@' or '-', starting with a letter or digit`);
  }
  return name;
}

export async function addUser(users: UserStore, name: string, password: string, now: number): Promise<UserRecord> {
  checkUserName(name);
  const passwordHash = await hashPassword(password);
  const id = newId('usr');
  if (!(await users.createUser({ id, name, passwordHash, role: 'admin', now }))) throw new CloudError('USER_EXISTS', `a user "${name}" already exists`);
  return (await users.findUser(name))!;
}

/** A new password; also enables a disabled user, clears a lockout and ends the user's sessions. */
export async function setUserPassword(users: UserStore, name: string, password: string, now: number): Promise<void> {
  const passwordHash = await hashPassword(password);
  if (!(await users.setPassword(name, passwordHash, now))) throw noSuchUser(name);
}

/** The user can no longer log in; their sessions end now. `user passwd` enables them again. */
export async function disableUser(users: UserStore, name: string, now: number): Promise<void> {
  if (!(await users.disableUser(name, now))) throw noSuchUser(name);
}

export async function requireUser(users: UserStore, name: string): Promise<UserRecord> {
  const user = await users.findUser(name);
  if (!user) throw noSuchUser(name);
  return user;
}

/** One line per user for `user list`: name, state, created. */
export function describeUser(u: UserRecord, now: number): string {
  const state =
    u.disabledAt !== null
      ? `disabled since ${iso(u.disabledAt)}`
      : u.lockedUntil !== null && u.lockedUntil > now
        ? `locked until ${iso(u.lockedUntil)} (${u.failedLogins} wrong passwords)`
        : 'active';
  return `${u.name}\t${u.role}\t${state}\tcreated ${iso(u.createdAt)}`;
}

function noSuchUser(name: string): CloudError {
  return new CloudError('USER_NOT_FOUND', `no user "${name}"`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + 'Z';
}

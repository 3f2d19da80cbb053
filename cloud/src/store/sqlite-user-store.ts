import type Database from 'better-sqlite3';
import type { Row } from './sqlite-rows.js';
import { toUser } from './user-rows.js';
import type { UserRecord, UserRole, UserStore, UserWithPassword } from './user-types.js';

/** Dashboard users and sessions in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteUserStore implements UserStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async createUser(u: { id: string; name: string; passwordHash: string; role: UserRole; now: number }): Promise<boolean> {
    return this.#s.insertUser.run(u.id, u.name, u.passwordHash, u.role, u.now).changes === 1;
  }

  async setPassword(name: string, passwordHash: string, _now: number): Promise<boolean> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        const row = s.userByName.get(name) as Row | undefined;
        if (!row) return false;
        s.setPassword.run(passwordHash, row.id);
        s.deleteSessionsOf.run(row.id);
        return true;
      })
      .immediate();
  }

  async disableUser(name: string, now: number): Promise<boolean> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        const row = s.userByName.get(name) as Row | undefined;
        if (!row) return false;
        s.disable.run(now, row.id);
        s.deleteSessionsOf.run(row.id);
        return true;
      })
      .immediate();
  }

  async findUser(name: string): Promise<UserWithPassword | null> {
    const row = this.#s.userByName.get(name) as Row | undefined;
    return row ? { ...toUser(row), passwordHash: row.password_hash as string } : null;
  }

  async listUsers(): Promise<UserRecord[]> {
    return (this.#s.users.all() as Row[]).map(toUser);
  }

  async recordLoginFailure(userId: string, lockFor: (failures: number) => number | null): Promise<{ failures: number; lockedUntil: number | null }> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        const row = s.loginFailure.get(userId) as Row | undefined;
        const failures = (row?.failed_logins as number | undefined) ?? 0;
        const until = lockFor(failures);
        if (until !== null) s.lock.run(until, userId);
        return { failures, lockedUntil: until };
      })
      .immediate();
  }

  async recordLoginSuccess(userId: string): Promise<void> {
    this.#s.loginSuccess.run(userId);
  }

  async createSession(x: { tokenHash: string; userId: string; createdAt: number; expiresAt: number }): Promise<void> {
    this.#s.insertSession.run(x.tokenHash, x.userId, x.createdAt, x.expiresAt, x.createdAt);
  }

  async sessionUser(tokenHash: string, now: number): Promise<UserRecord | null> {
    const row = this.#s.sessionUser.get(tokenHash, now) as Row | undefined;
    if (!row) return null;
    this.#s.touchSession.run(now, tokenHash);
    return toUser(row);
  }

  async deleteSession(tokenHash: string): Promise<void> {
    this.#s.deleteSession.run(tokenHash);
  }

  async deleteExpiredSessions(now: number): Promise<void> {
    this.#s.deleteExpired.run(now);
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertUser: p('INSERT INTO users (id, name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
    userByName: p('SELECT * FROM users WHERE name = ?'),
    users: p('SELECT * FROM users ORDER BY name'),
    setPassword: p('UPDATE users SET password_hash = ?, disabled_at = NULL, failed_logins = 0, locked_until = NULL WHERE id = ?'),
    disable: p('UPDATE users SET disabled_at = ? WHERE id = ?'),
    loginFailure: p('UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins'),
    lock: p('UPDATE users SET locked_until = ? WHERE id = ?'),
    loginSuccess: p('UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?'),
    insertSession: p('INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?)'),
    sessionUser: p(
      `SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL`,
    ),
    touchSession: p('UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?'),
    deleteSession: p('DELETE FROM sessions WHERE token_hash = ?'),
    deleteSessionsOf: p('DELETE FROM sessions WHERE user_id = ?'),
    deleteExpired: p('DELETE FROM sessions WHERE expires_at <= ?'),
  };
}

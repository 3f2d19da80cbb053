import type pg from 'pg';
import { all, inTransaction, one, run } from './pg-db.js';
import { toUser } from './user-rows.js';
import type { UserRecord, UserRole, UserStore, UserWithPassword } from './user-types.js';

// Names are unique case-insensitively through the unique index on lower(name): lookups go
// through lower() too (names are ASCII, so lower() folds as SQLite's NOCASE does).
const USER_BY_NAME = 'SELECT * FROM users WHERE lower(name) = lower($1)';

/** Dashboard users and sessions in PostgreSQL (migrated by PgStore); same behaviour as SqliteUserStore. */
export class PgUserStore implements UserStore {
  constructor(readonly pool: pg.Pool) {}

  async createUser(u: { id: string; name: string; passwordHash: string; role: UserRole; now: number }): Promise<boolean> {
    // No conflict target: a taken name (the lower(name) index) or id both leave it unchanged.
    const inserted = await run(
      this.pool,
      'INSERT INTO users (id, name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
      [u.id, u.name, u.passwordHash, u.role, u.now],
    );
    return inserted === 1;
  }

  async setPassword(name: string, passwordHash: string, _now: number): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const row = await one(
        c,
        'UPDATE users SET password_hash = $1, disabled_at = NULL, failed_logins = 0, locked_until = NULL WHERE lower(name) = lower($2) RETURNING id',
        [passwordHash, name],
      );
      if (!row) return false;
      await run(c, 'DELETE FROM sessions WHERE user_id = $1', [row.id]);
      return true;
    });
  }

  async disableUser(name: string, now: number): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const row = await one(c, 'UPDATE users SET disabled_at = $1 WHERE lower(name) = lower($2) RETURNING id', [now, name]);
      if (!row) return false;
      await run(c, 'DELETE FROM sessions WHERE user_id = $1', [row.id]);
      return true;
    });
  }

  async findUser(name: string): Promise<UserWithPassword | null> {
    const row = await one(this.pool, USER_BY_NAME, [name]);
    return row ? { ...toUser(row), passwordHash: row.password_hash as string } : null;
  }

  async listUsers(): Promise<UserRecord[]> {
    // SQLite's NOCASE order: ASCII letters folded, otherwise byte order.
    return (await all(this.pool, 'SELECT * FROM users ORDER BY lower(name COLLATE "C")')).map(toUser);
  }

  async recordLoginFailure(userId: string, lockFor: (failures: number) => number | null): Promise<{ failures: number; lockedUntil: number | null }> {
    return inTransaction(this.pool, async (c) => {
      // The increment holds the row until commit: a parallel wrong guess waits, then counts on.
      const row = await one(c, 'UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins', [userId]);
      const failures = (row?.failed_logins as number | undefined) ?? 0;
      const until = lockFor(failures);
      if (until !== null) await run(c, 'UPDATE users SET locked_until = $1 WHERE id = $2', [until, userId]);
      return { failures, lockedUntil: until };
    });
  }

  async recordLoginSuccess(userId: string): Promise<void> {
    await run(this.pool, 'UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1', [userId]);
  }

  async createSession(x: { tokenHash: string; userId: string; createdAt: number; expiresAt: number }): Promise<void> {
    await run(this.pool, 'INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)', [
      x.tokenHash,
      x.userId,
      x.createdAt,
      x.expiresAt,
      x.createdAt,
    ]);
  }

  async sessionUser(tokenHash: string, now: number): Promise<UserRecord | null> {
    // Found and noted as used in one statement.
    const row = await one(
      this.pool,
      `UPDATE sessions s SET last_seen_at = $2 FROM users u
       WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.id = s.user_id AND u.disabled_at IS NULL
       RETURNING u.*`,
      [tokenHash, now],
    );
    return row ? toUser(row) : null;
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await run(this.pool, 'DELETE FROM sessions WHERE token_hash = $1', [tokenHash]);
  }

  async deleteExpiredSessions(now: number): Promise<void> {
    await run(this.pool, 'DELETE FROM sessions WHERE expires_at <= $1', [now]);
  }
}

import type Database from 'better-sqlite3';
import type { LeaseStore } from './types.js';

/** Leases in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteLeaseStore implements LeaseStore {
  readonly #acquire;
  readonly #release;

  constructor(db: Database.Database) {
    // One statement: the row is taken when free, expired, or already ours.
    this.#acquire = db.prepare(
      `INSERT INTO leases (name, holder, until) VALUES (:name, :holder, :until)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
       WHERE leases.holder = excluded.holder OR leases.until <= :now`,
    );
    this.#release = db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?');
  }

  async acquire(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    return this.#acquire.run({ name, holder, until: now + ttlMs, now }).changes === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    this.#release.run(name, holder);
  }
}

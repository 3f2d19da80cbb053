import type pg from 'pg';
import { run } from './pg-db.js';
import type { LeaseStore } from './types.js';

/** Leases in PostgreSQL: one upsert, so two replicas asking at once get one yes. */
export class PgLeaseStore implements LeaseStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async acquire(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    const n = await run(
      this.#pool,
      `INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
       WHERE leases.holder = excluded.holder OR leases.until <= $4`,
      [name, holder, now + ttlMs, now],
    );
    return n === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    await run(this.#pool, 'DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }
}

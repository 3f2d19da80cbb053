import pg from 'pg';

// What every PostgreSQL store shares: the pool and the transaction helper.
//
// BIGINT (epoch ms, counters, identity ids) comes back as a JS number, as SQLite gives it, so
// the row mappers in sqlite-rows.ts serve both stores; every value the cloud keeps fits a
// double exactly. count(*) is BIGINT too.

export type PgClient = pg.PoolClient;
/** Something queries run on: the pool (autocommit) or a transaction's client. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;
export type Row = Record<string, unknown>;

const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

export interface PoolOptions {
  /** Connections this process keeps open at most. */
  max: number;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
}

export function createPool(url: string, o: PoolOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: o.max, application_name: o.applicationName ?? 'vigil-cloud', types, connectionTimeoutMillis: 10_000 });
  // An idle connection the server drops (restart, failover) must not crash the process; the
  // pool replaces it on the next checkout.
  pool.on('error', () => undefined);
  return pool;
}

/** serialization_failure, deadlock_detected: the transaction is safe to run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_TRIES = 5;

/**
 * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when
 * it throws. A serialization failure or deadlock (two replicas racing for the same rows) runs
 * it again, a few times, so `fn` must not have effects outside the database.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: PgClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (attempt >= MAX_TRIES || !code || !RETRYABLE.has(code)) throw err;
    } finally {
      c.release();
    }
  }
}

/** The first row, or undefined. */
export async function one(q: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> {
  return (await q.query<Row>(sql, params)).rows[0];
}

export async function all(q: Queryable, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await q.query<Row>(sql, params)).rows;
}

/** Rows changed by an INSERT, UPDATE or DELETE. */
export async function run(q: Queryable, sql: string, params: unknown[] = []): Promise<number> {
  return (await q.query(sql, params)).rowCount ?? 0;
}

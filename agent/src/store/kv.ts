import type { Db } from './db.js';

/** Small durable key/value records (the encrypted device token, identity). */
export class Kv {
  readonly #get;
  readonly #set;
  readonly #del;

  constructor(private readonly db: Db) {
    this.#get = db.prepare<[string], { value: Buffer }>('SELECT value FROM kv WHERE key = ?');
    this.#set = db.prepare(
      'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    this.#del = db.prepare('DELETE FROM kv WHERE key = ?');
  }

  get(key: string): Buffer | undefined {
    return this.#get.get(key)?.value;
  }

  set(key: string, value: Buffer, now: number): void {
    this.#set.run(key, value, now);
  }

  /** Runs fn in one transaction: every write in it lands, or none does. */
  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  delete(key: string): void {
    this.#del.run(key);
  }
}

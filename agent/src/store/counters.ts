import type { Db } from './db.js';

/** Counters kept on disk, so what was dropped or evicted is still known after a restart. */
export class Counters {
  readonly #inc;
  readonly #get;
  readonly #all;

  constructor(db: Db) {
    this.#inc = db.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    this.#get = db.prepare<[string], { value: number }>('SELECT value FROM counters WHERE name = ?');
    this.#all = db.prepare<[], { name: string; value: number }>('SELECT name, value FROM counters ORDER BY name');
  }

  inc(name: string, by = 1): void {
    this.#inc.run(name, by);
  }

  get(name: string): number {
    return this.#get.get(name)?.value ?? 0;
  }

  all(): Record<string, number> {
    return Object.fromEntries(this.#all.all().map((r) => [r.name, r.value]));
  }
}

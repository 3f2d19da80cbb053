import type pg from 'pg';
import type { PgClient } from './pg-db.js';

// The live stream's log on PostgreSQL. Its seq must grow in commit order, or a reader that
// saw seq 11 (committed first) would skip 10 (committed after) for good. An identity column
// numbers rows at insert, so every append first takes one transaction-scoped advisory lock,
// held until commit: appends commit one at a time, in seq order. Events and alert changes are
// rare next to frames, so the lock is cheap. The NOTIFY, sent on commit, wakes every replica's
// stream readers.

export const STREAM_CHANNEL = 'vigil_stream';
const STREAM_LOCK = 'vigil-stream-append';

/** Appends one message in the caller's transaction. */
export async function appendStream(c: PgClient, type: string, payload: string, now: number): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [STREAM_LOCK]);
  await c.query('INSERT INTO stream (type, payload, created_at) VALUES ($1, $2, $3)', [type, payload, now]);
  await c.query('SELECT pg_notify($1, $2)', [STREAM_CHANNEL, '']);
}

/**
 * One connection that LISTENs for stream appends and calls the listeners; reconnects after
 * the server drops it (a restart or failover), then calls them once, for what it may have missed.
 */
export class StreamListener {
  readonly #connect: () => Promise<pg.Client>;
  readonly #listeners = new Set<() => void>();
  #client: pg.Client | undefined;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(connect: () => Promise<pg.Client>) {
    this.#connect = connect;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#client && !this.#retry) void this.#open(false);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
  }

  #fire(): void {
    for (const l of this.#listeners) l();
  }

  async #open(reconnected: boolean): Promise<void> {
    this.#retry = undefined;
    if (this.#closed) return;
    let c: pg.Client | undefined;
    try {
      c = await this.#connect();
      c.on('notification', () => this.#fire());
      c.on('error', () => this.#lost(c!));
      c.on('end', () => this.#lost(c!));
      await c.query(`LISTEN ${STREAM_CHANNEL}`);
      if (this.#closed) {
        await c.end();
        return;
      }
      this.#client = c;
      if (reconnected) this.#fire();
    } catch {
      await c?.end().catch(() => undefined);
      this.#lost(undefined);
    }
  }

  #lost(c: pg.Client | undefined): void {
    if (c && this.#client !== c) return;
    this.#client = undefined;
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => void this.#open(true), 1_000);
    this.#retry.unref();
  }
}

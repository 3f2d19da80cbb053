import type pg from 'pg';
import { RISK_LEVELS } from '../analysis/analyser.js';
import { EVENT_SELECT, toBatchFrameRef, toEvent } from './event-rows.js';
import type { EventFilter, EventRecord, EventStore, StreamMessage } from './event-types.js';
import { all, one, run, type Row } from './pg-db.js';

/** Events and the live stream's log in PostgreSQL (appends: pg-stream.ts). */
export class PgEventStore implements EventStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async getEvent(id: string): Promise<EventRecord | null> {
    const row = await one(this.#pool, `${EVENT_SELECT} WHERE e.id = $1`, [id]);
    return row ? this.#withFrames(row) : null;
  }

  async listEvents(f: EventFilter): Promise<EventRecord[]> {
    const minRank = f.minLevel === undefined ? 0 : RISK_LEVELS.indexOf(f.minLevel);
    const rows = await all(
      this.#pool,
      `${EVENT_SELECT} WHERE ($1::text IS NULL OR e.camera_id = $1) AND ($2::text IS NULL OR e.device_id = $2)
       AND e.level = ANY($3::text[]) AND ($4::bigint IS NULL OR e.created_at < $4)
       ORDER BY e.created_at DESC, e.id COLLATE "C" DESC LIMIT $5`,
      [f.cameraId ?? null, f.deviceId ?? null, RISK_LEVELS.slice(minRank), f.before ?? null, f.limit],
    );
    return Promise.all(rows.map((r) => this.#withFrames(r)));
  }

  async streamAfter(seq: number, limit: number): Promise<StreamMessage[]> {
    // Appends commit one at a time in seq order (pg-stream.ts), so what this reads has no gap
    // that a later commit could fill.
    const rows = await all(this.#pool, 'SELECT * FROM stream WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit]);
    return rows.map((r) => ({ seq: r.seq as number, type: r.type as string, payload: r.payload as string, createdAt: r.created_at as number }));
  }

  async streamBounds(): Promise<{ first: number | null; last: number }> {
    // The newest committed row is where a new reader starts. Only when pruning emptied the log
    // does the sequence say how far it went, so `last` never goes back.
    const r = (await one(
      this.#pool,
      `SELECT min(seq) AS first, max(seq) AS last,
         (SELECT pg_sequence_last_value(pg_get_serial_sequence('stream', 'seq')::regclass)) AS used
       FROM stream`,
    ))!;
    const first = (r.first as number | null) ?? null;
    const last = (r.last as number | null) ?? (r.used as number | null) ?? 0;
    return { first, last };
  }

  async pruneStream(before: number): Promise<number> {
    return run(this.#pool, 'DELETE FROM stream WHERE created_at < $1', [before]);
  }

  async #withFrames(r: Row): Promise<EventRecord> {
    const frames = await all(this.#pool, `SELECT frame_id, captured_at FROM analysis_frames WHERE batch_id = $1 AND state = 'batched' ORDER BY captured_at`, [r.batch_id]);
    return { ...toEvent(r), frames: frames.map(toBatchFrameRef) };
  }
}

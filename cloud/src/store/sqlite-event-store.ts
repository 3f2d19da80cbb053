import type Database from 'better-sqlite3';
import { RISK_LEVELS } from '../analysis/analyser.js';
import { EVENT_SELECT, toBatchFrameRef, toEvent } from './event-rows.js';
import type { EventFilter, EventRecord, EventStore, StreamMessage } from './event-types.js';
import type { Row } from './sqlite-rows.js';

/** Events and the live stream's log in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteEventStore implements EventStore {
  readonly #s;

  constructor(db: Database.Database) {
    this.#s = prepare(db);
  }

  async getEvent(id: string): Promise<EventRecord | null> {
    const row = this.#s.event.get(id) as Row | undefined;
    return row ? this.#withFrames(row) : null;
  }

  async listEvents(f: EventFilter): Promise<EventRecord[]> {
    const minRank = f.minLevel === undefined ? 0 : RISK_LEVELS.indexOf(f.minLevel);
    const rows = this.#s.events.all({
      cameraId: f.cameraId ?? null,
      deviceId: f.deviceId ?? null,
      levels: JSON.stringify(RISK_LEVELS.slice(minRank)),
      before: f.before ?? null,
      limit: f.limit,
    }) as Row[];
    return rows.map((r) => this.#withFrames(r));
  }

  async streamAfter(seq: number, limit: number): Promise<StreamMessage[]> {
    return (this.#s.streamAfter.all(seq, limit) as Row[]).map((r) => ({
      seq: r.seq as number,
      type: r.type as string,
      payload: r.payload as string,
      createdAt: r.created_at as number,
    }));
  }

  async streamBounds(): Promise<{ first: number | null; last: number }> {
    const r = this.#s.streamBounds.get() as Row;
    // AUTOINCREMENT keeps the highest seq ever used in sqlite_sequence, so `last` never goes
    // back even when pruning emptied the table.
    const used = this.#s.lastUsedSeq.get() as Row | undefined;
    return { first: (r.first as number | null) ?? null, last: Math.max((r.last as number | null) ?? 0, (used?.seq as number | undefined) ?? 0) };
  }

  async pruneStream(before: number): Promise<number> {
    return this.#s.prune.run(before).changes;
  }

  #withFrames(r: Row): EventRecord {
    const frames = (this.#s.frames.all(r.batch_id) as Row[]).map(toBatchFrameRef);
    return { ...toEvent(r), frames };
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    event: p(`${EVENT_SELECT} WHERE e.id = ?`),
    events: p(
      `${EVENT_SELECT} WHERE (:cameraId IS NULL OR e.camera_id = :cameraId) AND (:deviceId IS NULL OR e.device_id = :deviceId)
       AND e.level IN (SELECT value FROM json_each(:levels)) AND (:before IS NULL OR e.created_at < :before)
       ORDER BY e.created_at DESC, e.id DESC LIMIT :limit`,
    ),
    frames: p(`SELECT frame_id, captured_at FROM analysis_frames WHERE batch_id = ? AND state = 'batched' ORDER BY captured_at`),
    streamAfter: p('SELECT * FROM stream WHERE seq > ? ORDER BY seq LIMIT ?'),
    streamBounds: p('SELECT min(seq) AS first, max(seq) AS last FROM stream'),
    lastUsedSeq: p(`SELECT seq FROM sqlite_sequence WHERE name = 'stream'`),
    prune: p('DELETE FROM stream WHERE created_at < ?'),
  };
}

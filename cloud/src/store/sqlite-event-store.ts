import type Database from 'better-sqlite3';
import { RISK_LEVELS, type RiskLevel } from '../analysis/analyser.js';
import type { NewEvent } from './analysis-types.js';
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
    const frames = (this.#s.frames.all(r.batch_id) as Row[]).map((f) => ({ id: f.frame_id as string, capturedAt: f.captured_at as number }));
    return { ...toEvent(r), frames };
  }
}

function toEvent(r: Row): Omit<EventRecord, 'frames'> {
  return {
    id: r.id as string,
    batchId: r.batch_id as string,
    cameraId: r.camera_id as string,
    cameraKey: r.camera_key as string,
    cameraName: (r.camera_name as string | null) ?? null,
    deviceId: r.device_id as string,
    deviceName: r.device_name as string,
    site: r.site as string,
    startedAt: r.started_at as number,
    endedAt: r.ended_at as number,
    riskScore: r.risk_score as number,
    level: r.level as RiskLevel,
    summary: r.summary as string,
    reasoning: r.reasoning as string,
    observations: JSON.parse(r.observations as string) as string[],
    detections: JSON.parse(r.detections as string) as NewEvent['detections'],
    source: r.source as NewEvent['source'],
    model: (r.model as string | null) ?? null,
    offSpec: r.off_spec === null ? null : (JSON.parse(r.off_spec as string) as NewEvent['offSpec']),
    analysisError: (r.analysis_error as string | null) ?? null,
    alertId: (r.alert_id as string | null) ?? null,
    createdAt: r.created_at as number,
  };
}

const EVENT_SELECT = `SELECT e.*, c.key AS camera_key, coalesce(c.name, w.reported_name) AS camera_name, d.name AS device_name, s.name AS site
  FROM events e JOIN cameras c ON c.id = e.camera_id JOIN devices d ON d.id = e.device_id JOIN sites s ON s.id = d.site_id
  LEFT JOIN camera_watch w ON w.camera_id = e.camera_id`;

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

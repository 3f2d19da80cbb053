import type Database from 'better-sqlite3';
import type { Notify } from './alert-types.js';
import { dueBatchReason, emptyStates, SCENE_ALERT_KIND, toBatch, toBatchFrame, toCameraState, toJob } from './analysis-rows.js';
import type {
  AnalysisCameraState,
  AnalysisCounters,
  AnalysisStore,
  BatchFrame,
  BatchRecord,
  BatchResult,
  BatchState,
  CameraContext,
  IntakeInput,
  Job,
  JobKind,
  JobState,
} from './analysis-types.js';
import type { SqliteAlertStore } from './sqlite-alert-store.js';
import type { Row } from './sqlite-rows.js';

/** The analysis pipeline's tables in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteAnalysisStore implements AnalysisStore {
  readonly #db: Database.Database;
  readonly #alerts: SqliteAlertStore;
  readonly #s;

  constructor(db: Database.Database, alerts: SqliteAlertStore) {
    this.#db = db;
    this.#alerts = alerts;
    this.#s = prepare(db);
  }

  async claimJobs(kind: JobKind, now: number, limit: number, leaseUntil: number): Promise<Job[]> {
    const rows = this.#db.transaction(() => this.#s.claimJobs.all({ kind, now, limit, leaseUntil }) as Row[]).immediate();
    // RETURNING gives no order.
    return rows.map(toJob).sort((a, b) => a.id - b.id);
  }

  async extendLeases(ids: number[], leaseUntil: number): Promise<void> {
    if (ids.length === 0) return;
    this.#s.extendLeases.run(leaseUntil, JSON.stringify(ids));
  }

  async retryJob(id: number, runAt: number, error: string, countAttempt: boolean): Promise<void> {
    this.#s.retryJob.run({ id, runAt, error, uncount: countAttempt ? 0 : 1 });
  }

  async failJob(id: number, error: string, now: number): Promise<void> {
    this.#s.failJob.run(error, now, id);
  }

  async nextJobAt(kind: JobKind): Promise<number | null> {
    return ((this.#s.nextJob.get(kind) as Row).at as number | null) ?? null;
  }

  async cameraContext(cameraId: string): Promise<CameraContext | null> {
    const r = this.#s.cameraContext.get(cameraId) as Row | undefined;
    if (!r) return null;
    return {
      cameraId,
      cameraKey: r.camera_key as string,
      cameraName: (r.camera_name as string | null) ?? (r.camera_key as string),
      deviceId: r.device_id as string,
      deviceName: r.device_name as string,
      siteId: r.site_id as string,
      site: r.site as string,
    };
  }

  async cameraState(cameraId: string): Promise<AnalysisCameraState | null> {
    const row = this.#s.camera.get(cameraId) as Row | undefined;
    return row ? toCameraState(row) : null;
  }

  async recordIntake(i: IntakeInput): Promise<boolean> {
    const s = this.#s;
    const { frame, decision: d, now } = i;
    return this.#db
      .transaction(() => {
        s.ensureCamera.run(frame.cameraId);
        const ref = (s.camera.get(frame.cameraId) as Row).ref_frame_id as string | null;
        if (ref !== i.refFrameId) return false;
        const inserted = s.insertFrame.run({
          frameId: frame.id,
          cameraId: frame.cameraId,
          capturedAt: frame.capturedAt,
          state: d.kind,
          distance: d.kind === 'invalid' ? null : d.distance,
          reason: d.kind === 'invalid' ? d.reason : d.kind === 'batched' ? d.reason : null,
          now,
        });
        // A frame is decided once: a second job for it (none should exist) changes nothing.
        if (inserted.changes === 1) {
          s.countFrame.run({ cameraId: frame.cameraId, skipped: d.kind === 'duplicate' ? 1 : 0, invalid: d.kind === 'invalid' ? 1 : 0, batched: d.kind === 'batched' ? 1 : 0 });
          if (d.kind === 'batched') {
            s.setReference.run(frame.id, d.dhash, frame.capturedAt, frame.cameraId);
            const batchId = this.#addToBatch(i);
            s.setFrameBatch.run(batchId, frame.id);
          }
        }
        s.finishJob.run(now, i.jobId);
        return true;
      })
      .immediate();
  }

  /** Puts the frame into the camera's open batch, or a new one; closes what is complete. */
  #addToBatch(i: IntakeInput): string {
    const s = this.#s;
    const { frame, policy, now } = i;
    const cam = s.camera.get(frame.cameraId) as Row;
    const open = cam.open_batch_id ? (s.batch.get(cam.open_batch_id) as Row | undefined) : undefined;
    if (open && open.state === 'open') {
      const first = open.first_captured_at as number;
      const fits = frame.capturedAt >= first && frame.capturedAt < first + policy.windowMs;
      if (fits) {
        const count = (open.frame_count as number) + 1;
        const closeAt = Math.min((open.opened_at as number) + policy.windowMs, now + policy.idleMs);
        s.extendBatch.run({ id: open.id, capturedAt: frame.capturedAt, now, closeAt });
        if (count >= policy.maxFrames) this.#closeBatch(open.id as string, 'full', now);
        return open.id as string;
      }
      this.#closeBatch(open.id as string, 'window', now);
    }
    const id = i.newBatchId;
    const closeAt = Math.min(now + policy.windowMs, now + policy.idleMs);
    s.insertBatch.run({ id, cameraId: frame.cameraId, deviceId: frame.deviceId, capturedAt: frame.capturedAt, now, closeAt });
    s.setOpenBatch.run(id, frame.cameraId);
    if (policy.windowMs === 0) this.#closeBatch(id, 'immediate', now);
    else if (policy.maxFrames <= 1) this.#closeBatch(id, 'full', now);
    return id;
  }

  #closeBatch(id: string, reason: string, now: number): void {
    const s = this.#s;
    if (s.readyBatch.run(reason, id).changes !== 1) return;
    s.clearOpenBatch.run(id);
    s.insertJob.run('batch', id, now, now, now);
  }

  async closeDueBatches(now: number): Promise<number> {
    return this.#db
      .transaction(() => {
        const due = this.#s.dueBatches.all(now) as Row[];
        for (const b of due) this.#closeBatch(b.id as string, dueBatchReason(b), now);
        return due.length;
      })
      .immediate();
  }

  async nextBatchCloseAt(): Promise<number | null> {
    return ((this.#s.nextBatchClose.get() as Row).at as number | null) ?? null;
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    const row = this.#s.batch.get(id) as Row | undefined;
    return row ? toBatch(row) : null;
  }

  async batchFrames(batchId: string): Promise<BatchFrame[]> {
    return (this.#s.batchFrames.all(batchId) as Row[]).map(toBatchFrame);
  }

  async recordBatch(r: BatchResult) {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        const batch = s.batch.get(r.batchId) as Row;
        // Done already: a re-run after a crash that came after this commit; nothing twice.
        if (batch.state === 'done') {
          s.finishJob.run(r.now, r.jobId);
          const ev = s.eventOfBatch.get(r.batchId) as Row | undefined;
          return { eventId: (ev?.id as string | undefined) ?? null, alert: null };
        }
        for (const [frameId, detections] of Object.entries(r.detections)) s.setDetections.run(JSON.stringify(detections), frameId);
        let alert = null;
        let eventId: string | null = null;
        if (r.event) {
          const e = r.event;
          eventId = e.id;
          const cameraId = batch.camera_id as string;
          const deviceId = batch.device_id as string;
          const plan = r.planAlert(this.#alerts.openAlertFor(SCENE_ALERT_KIND, deviceId, cameraId));
          const notifyAs = (event: 'alert.opened' | 'alert.escalated', on: boolean): Notify => (on ? (a) => r.notify(event, a) : () => []);
          if (plan.action === 'open') {
            const opened = this.#alerts.openInTransaction(
              { id: plan.alertId, kind: SCENE_ALERT_KIND, deviceId, cameraId, openedAt: r.now, title: plan.title, detail: { ...plan.detail, eventId: e.id }, level: plan.level },
              notifyAs('alert.opened', plan.notify),
              r.now,
            );
            alert = this.#alerts.attachEventInTransaction(opened.alert.id, r.now, null, () => []);
          } else if (plan.action === 'attach') {
            alert = this.#alerts.attachEventInTransaction(plan.alertId, r.now, plan.escalateTo, notifyAs('alert.escalated', plan.notify));
          }
          s.insertEvent.run({
            id: e.id,
            batchId: r.batchId,
            cameraId,
            deviceId,
            startedAt: e.startedAt,
            endedAt: e.endedAt,
            riskScore: e.riskScore,
            level: e.level,
            summary: e.summary,
            reasoning: e.reasoning,
            observations: JSON.stringify(e.observations),
            detections: JSON.stringify(e.detections),
            source: e.source,
            model: e.model,
            offSpec: e.offSpec === null ? null : JSON.stringify(e.offSpec),
            analysisError: e.analysisError,
            alertId: alert?.id ?? null,
            now: r.now,
          });
          s.insertStream.run('event', JSON.stringify({ eventId: e.id }), r.now);
        }
        s.finishBatch.run(JSON.stringify(r.outcome), r.now, r.batchId);
        s.finishJob.run(r.now, r.jobId);
        return { eventId, alert };
      })
      .immediate();
  }

  async getSettings(scope: 'site' | 'camera', id: string): Promise<Record<string, unknown>> {
    const row = this.#s.settings.get(scope, id) as Row | undefined;
    return row ? (JSON.parse(row.settings as string) as Record<string, unknown>) : {};
  }

  async setSettings(scope: 'site' | 'camera', id: string, settings: Record<string, unknown>, now: number): Promise<void> {
    if (Object.keys(settings).length === 0) this.#s.deleteSettings.run(scope, id);
    else this.#s.upsertSettings.run(scope, id, JSON.stringify(settings), now);
  }

  async counters(): Promise<AnalysisCounters> {
    const s = this.#s;
    const jobs = { frame: emptyStates(), batch: emptyStates() };
    for (const r of s.jobCounts.all() as Row[]) jobs[r.kind as JobKind][r.state as JobState] = r.n as number;
    const f = s.frameCounts.get() as Row;
    const batches: Record<BatchState, number> = { open: 0, ready: 0, done: 0 };
    for (const r of s.batchCounts.all() as Row[]) batches[r.state as BatchState] = r.n as number;
    return {
      jobs,
      frames: { seen: (f.seen as number) ?? 0, skipped: (f.skipped as number) ?? 0, invalid: (f.invalid as number) ?? 0, batched: (f.batched as number) ?? 0 },
      batches,
      events: (s.eventCount.get() as Row).n as number,
    };
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    // A running job whose lease ended (its process died) is due again.
    claimJobs: p(
      `UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = :leaseUntil, updated_at = :now WHERE id IN
         (SELECT id FROM jobs WHERE kind = :kind AND ((state = 'pending' AND run_at <= :now) OR (state = 'running' AND lease_until <= :now))
          ORDER BY run_at, id LIMIT :limit)
       RETURNING *`,
    ),
    extendLeases: p(`UPDATE jobs SET lease_until = ? WHERE state = 'running' AND id IN (SELECT value FROM json_each(?))`),
    cameraContext: p(
      `SELECT c.key AS camera_key, coalesce(c.name, w.reported_name) AS camera_name, d.id AS device_id, d.name AS device_name, s.id AS site_id, s.name AS site
       FROM cameras c JOIN devices d ON d.id = c.device_id JOIN sites s ON s.id = d.site_id LEFT JOIN camera_watch w ON w.camera_id = c.id WHERE c.id = ?`,
    ),
    retryJob: p(`UPDATE jobs SET state = 'pending', run_at = :runAt, last_error = :error, attempts = attempts - :uncount, lease_until = NULL, updated_at = :runAt WHERE id = :id`),
    failJob: p(`UPDATE jobs SET state = 'failed', last_error = ?, updated_at = ?, lease_until = NULL WHERE id = ?`),
    finishJob: p(`UPDATE jobs SET state = 'done', updated_at = ?, lease_until = NULL, last_error = NULL WHERE id = ?`),
    insertJob: p(`INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING`),
    nextJob: p(
      `SELECT min(CASE state WHEN 'pending' THEN run_at ELSE lease_until END) AS at FROM jobs WHERE kind = ? AND state IN ('pending', 'running')`,
    ),
    ensureCamera: p('INSERT INTO analysis_cameras (camera_id) VALUES (?) ON CONFLICT DO NOTHING'),
    camera: p('SELECT * FROM analysis_cameras WHERE camera_id = ?'),
    insertFrame: p(
      `INSERT INTO analysis_frames (frame_id, camera_id, captured_at, state, distance, reason, created_at)
       VALUES (:frameId, :cameraId, :capturedAt, :state, :distance, :reason, :now) ON CONFLICT DO NOTHING`,
    ),
    countFrame: p(
      `UPDATE analysis_cameras SET frames_seen = frames_seen + 1, frames_skipped = frames_skipped + :skipped,
       frames_invalid = frames_invalid + :invalid, frames_batched = frames_batched + :batched WHERE camera_id = :cameraId`,
    ),
    setReference: p('UPDATE analysis_cameras SET ref_frame_id = ?, ref_dhash = ?, ref_captured_at = ? WHERE camera_id = ?'),
    setFrameBatch: p('UPDATE analysis_frames SET batch_id = ? WHERE frame_id = ?'),
    batch: p('SELECT * FROM analysis_batches WHERE id = ?'),
    insertBatch: p(
      `INSERT INTO analysis_batches (id, camera_id, device_id, state, first_captured_at, last_captured_at, frame_count, opened_at, last_added_at, close_at)
       VALUES (:id, :cameraId, :deviceId, 'open', :capturedAt, :capturedAt, 1, :now, :now, :closeAt)`,
    ),
    extendBatch: p(
      `UPDATE analysis_batches SET frame_count = frame_count + 1, last_captured_at = max(last_captured_at, :capturedAt),
       last_added_at = :now, close_at = :closeAt WHERE id = :id`,
    ),
    setOpenBatch: p('UPDATE analysis_cameras SET open_batch_id = ? WHERE camera_id = ?'),
    clearOpenBatch: p('UPDATE analysis_cameras SET open_batch_id = NULL WHERE open_batch_id = ?'),
    readyBatch: p(`UPDATE analysis_batches SET state = 'ready', close_reason = ? WHERE id = ? AND state = 'open'`),
    dueBatches: p(`SELECT id, opened_at, last_added_at FROM analysis_batches WHERE state = 'open' AND close_at <= ?`),
    nextBatchClose: p(`SELECT min(close_at) AS at FROM analysis_batches WHERE state = 'open'`),
    batchFrames: p(
      `SELECT a.frame_id, a.captured_at, a.distance, a.reason, f.object_key FROM analysis_frames a JOIN frames f ON f.id = a.frame_id
       WHERE a.batch_id = ? ORDER BY a.captured_at`,
    ),
    setDetections: p('UPDATE analysis_frames SET detections = ? WHERE frame_id = ?'),
    eventOfBatch: p('SELECT id FROM events WHERE batch_id = ?'),
    insertEvent: p(
      `INSERT INTO events (id, batch_id, camera_id, device_id, started_at, ended_at, risk_score, level, summary, reasoning, observations,
         detections, source, model, off_spec, analysis_error, alert_id, created_at)
       VALUES (:id, :batchId, :cameraId, :deviceId, :startedAt, :endedAt, :riskScore, :level, :summary, :reasoning, :observations,
         :detections, :source, :model, :offSpec, :analysisError, :alertId, :now)`,
    ),
    insertStream: p('INSERT INTO stream (type, payload, created_at) VALUES (?, ?, ?)'),
    finishBatch: p(`UPDATE analysis_batches SET state = 'done', outcome = ?, done_at = ? WHERE id = ?`),
    settings: p('SELECT settings FROM analysis_settings WHERE scope = ? AND scope_id = ?'),
    upsertSettings: p(
      `INSERT INTO analysis_settings (scope, scope_id, settings, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (scope, scope_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
    ),
    deleteSettings: p('DELETE FROM analysis_settings WHERE scope = ? AND scope_id = ?'),
    jobCounts: p('SELECT kind, state, count(*) AS n FROM jobs GROUP BY kind, state'),
    frameCounts: p(
      `SELECT sum(frames_seen) AS seen, sum(frames_skipped) AS skipped, sum(frames_invalid) AS invalid, sum(frames_batched) AS batched FROM analysis_cameras`,
    ),
    batchCounts: p('SELECT state, count(*) AS n FROM analysis_batches GROUP BY state'),
    eventCount: p('SELECT count(*) AS n FROM events'),
  };
}

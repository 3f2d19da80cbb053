import type pg from 'pg';
import type { AlertRecord, Notify } from './alert-types.js';
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
import { appendStreamDrafts, type PgAlertStore, type StreamDrafts } from './pg-alert-store.js';
import { all, inTransaction, one, run, type PgClient } from './pg-db.js';

// Lock order, so replicas wait on each other instead of deadlocking: a camera's
// analysis_cameras row first, then its batches, then alerts, then the stream (always last).
// Intake and batch recording take the camera row; the batch closer never waits (SKIP LOCKED).

/**
 * The analysis pipeline's tables in PostgreSQL, shared by replicas: jobs are claimed with
 * FOR UPDATE SKIP LOCKED, and each camera's intake and batch results are serialized on its
 * analysis_cameras row.
 */
export class PgAnalysisStore implements AnalysisStore {
  readonly #pool: pg.Pool;
  readonly #alerts: PgAlertStore;

  constructor(pool: pg.Pool, alerts: PgAlertStore) {
    this.#pool = pool;
    this.#alerts = alerts;
  }

  async claimJobs(kind: JobKind, now: number, limit: number, leaseUntil: number): Promise<Job[]> {
    // A running job whose lease ended (its process died) is due again. Rows another replica
    // is claiming at this moment are skipped, so claims are disjoint.
    const rows = await all(
      this.#pool,
      `WITH due AS (
         SELECT id FROM jobs WHERE kind = $1 AND ((state = 'pending' AND run_at <= $2) OR (state = 'running' AND lease_until <= $2))
         ORDER BY run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE jobs j SET state = 'running', attempts = attempts + 1, lease_until = $4, updated_at = $2 FROM due WHERE j.id = due.id
       RETURNING j.*`,
      [kind, now, limit, leaseUntil],
    );
    return rows.map(toJob).sort((a, b) => a.id - b.id);
  }

  async extendLeases(ids: number[], leaseUntil: number): Promise<void> {
    if (ids.length === 0) return;
    await run(this.#pool, `UPDATE jobs SET lease_until = $1 WHERE state = 'running' AND id = ANY($2::bigint[])`, [leaseUntil, ids]);
  }

  async retryJob(id: number, runAt: number, error: string, countAttempt: boolean): Promise<void> {
    await run(
      this.#pool,
      `UPDATE jobs SET state = 'pending', run_at = $2, last_error = $3, attempts = attempts - $4, lease_until = NULL, updated_at = $2 WHERE id = $1`,
      [id, runAt, error, countAttempt ? 0 : 1],
    );
  }

  async failJob(id: number, error: string, now: number): Promise<void> {
    await run(this.#pool, `UPDATE jobs SET state = 'failed', last_error = $1, updated_at = $2, lease_until = NULL WHERE id = $3`, [error, now, id]);
  }

  async nextJobAt(kind: JobKind): Promise<number | null> {
    const row = await one(
      this.#pool,
      `SELECT min(CASE state WHEN 'pending' THEN run_at ELSE lease_until END) AS at FROM jobs WHERE kind = $1 AND state IN ('pending', 'running')`,
      [kind],
    );
    return (row?.at as number | null | undefined) ?? null;
  }

  async cameraContext(cameraId: string): Promise<CameraContext | null> {
    const r = await one(
      this.#pool,
      `SELECT c.key AS camera_key, coalesce(c.name, w.reported_name) AS camera_name, d.id AS device_id, d.name AS device_name, s.id AS site_id, s.name AS site
       FROM cameras c JOIN devices d ON d.id = c.device_id JOIN sites s ON s.id = d.site_id LEFT JOIN camera_watch w ON w.camera_id = c.id WHERE c.id = $1`,
      [cameraId],
    );
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
    const row = await one(this.#pool, 'SELECT * FROM analysis_cameras WHERE camera_id = $1', [cameraId]);
    return row ? toCameraState(row) : null;
  }

  async recordIntake(i: IntakeInput): Promise<boolean> {
    const { frame, decision: d, now } = i;
    return inTransaction(this.#pool, async (c) => {
      // The camera's row lock serializes its intake across replicas: the reference read here
      // stays the reference until commit.
      await run(c, 'INSERT INTO analysis_cameras (camera_id) VALUES ($1) ON CONFLICT DO NOTHING', [frame.cameraId]);
      const cam = (await one(c, 'SELECT * FROM analysis_cameras WHERE camera_id = $1 FOR UPDATE', [frame.cameraId]))!;
      if (((cam.ref_frame_id as string | null) ?? null) !== i.refFrameId) return false;
      const inserted = await run(
        c,
        `INSERT INTO analysis_frames (frame_id, camera_id, captured_at, state, distance, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
        [
          frame.id,
          frame.cameraId,
          frame.capturedAt,
          d.kind,
          d.kind === 'invalid' ? null : d.distance,
          d.kind === 'invalid' ? d.reason : d.kind === 'batched' ? d.reason : null,
          now,
        ],
      );
      // A frame is decided once: a second job for it (none should exist) changes nothing.
      if (inserted === 1) {
        await run(
          c,
          `UPDATE analysis_cameras SET frames_seen = frames_seen + 1, frames_skipped = frames_skipped + $2,
           frames_invalid = frames_invalid + $3, frames_batched = frames_batched + $4 WHERE camera_id = $1`,
          [frame.cameraId, d.kind === 'duplicate' ? 1 : 0, d.kind === 'invalid' ? 1 : 0, d.kind === 'batched' ? 1 : 0],
        );
        if (d.kind === 'batched') {
          await run(c, 'UPDATE analysis_cameras SET ref_frame_id = $1, ref_dhash = $2, ref_captured_at = $3 WHERE camera_id = $4', [
            frame.id,
            d.dhash,
            frame.capturedAt,
            frame.cameraId,
          ]);
          const batchId = await this.#addToBatch(c, i, cam.open_batch_id as string | null);
          await run(c, 'UPDATE analysis_frames SET batch_id = $1 WHERE frame_id = $2', [batchId, frame.id]);
        }
      }
      await finishJob(c, i.jobId, now);
      return true;
    });
  }

  /** Puts the frame into the camera's open batch, or a new one; closes what is complete. */
  async #addToBatch(c: PgClient, i: IntakeInput, openBatchId: string | null): Promise<string> {
    const { frame, policy, now } = i;
    const open = openBatchId ? await one(c, 'SELECT * FROM analysis_batches WHERE id = $1 FOR UPDATE', [openBatchId]) : undefined;
    if (open && open.state === 'open') {
      const first = open.first_captured_at as number;
      const fits = frame.capturedAt >= first && frame.capturedAt < first + policy.windowMs;
      if (fits) {
        const count = (open.frame_count as number) + 1;
        const closeAt = Math.min((open.opened_at as number) + policy.windowMs, now + policy.idleMs);
        await run(
          c,
          `UPDATE analysis_batches SET frame_count = frame_count + 1, last_captured_at = greatest(last_captured_at, $2),
           last_added_at = $3, close_at = $4 WHERE id = $1`,
          [open.id, frame.capturedAt, now, closeAt],
        );
        if (count >= policy.maxFrames) await closeBatch(c, open.id as string, 'full', now);
        return open.id as string;
      }
      await closeBatch(c, open.id as string, 'window', now);
    }
    const id = i.newBatchId;
    const closeAt = Math.min(now + policy.windowMs, now + policy.idleMs);
    await run(
      c,
      `INSERT INTO analysis_batches (id, camera_id, device_id, state, first_captured_at, last_captured_at, frame_count, opened_at, last_added_at, close_at)
       VALUES ($1, $2, $3, 'open', $4, $4, 1, $5, $5, $6)`,
      [id, frame.cameraId, frame.deviceId, frame.capturedAt, now, closeAt],
    );
    await run(c, 'UPDATE analysis_cameras SET open_batch_id = $1 WHERE camera_id = $2', [id, frame.cameraId]);
    if (policy.windowMs === 0) await closeBatch(c, id, 'immediate', now);
    else if (policy.maxFrames <= 1) await closeBatch(c, id, 'full', now);
    return id;
  }

  async closeDueBatches(now: number): Promise<number> {
    return inTransaction(this.#pool, async (c) => {
      // Both the batch and its camera's row are locked, skipping any another transaction
      // holds: a replica closing the same batches, or an intake of that camera (which may
      // close it itself; if not, the next pass does). Nothing waits, so nothing deadlocks.
      const due = await all(
        c,
        `SELECT b.id, b.opened_at, b.last_added_at FROM analysis_batches b JOIN analysis_cameras ac ON ac.camera_id = b.camera_id
         WHERE b.state = 'open' AND b.close_at <= $1 ORDER BY b.close_at FOR UPDATE OF b, ac SKIP LOCKED`,
        [now],
      );
      let closed = 0;
      for (const b of due) if (await closeBatch(c, b.id as string, dueBatchReason(b), now)) closed++;
      return closed;
    });
  }

  async nextBatchCloseAt(): Promise<number | null> {
    const row = await one(this.#pool, `SELECT min(close_at) AS at FROM analysis_batches WHERE state = 'open'`);
    return (row?.at as number | null | undefined) ?? null;
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    const row = await one(this.#pool, 'SELECT * FROM analysis_batches WHERE id = $1', [id]);
    return row ? toBatch(row) : null;
  }

  async batchFrames(batchId: string): Promise<BatchFrame[]> {
    const rows = await all(
      this.#pool,
      `SELECT a.frame_id, a.captured_at, a.distance, a.reason, f.object_key FROM analysis_frames a JOIN frames f ON f.id = a.frame_id
       WHERE a.batch_id = $1 ORDER BY a.captured_at`,
      [batchId],
    );
    return rows.map(toBatchFrame);
  }

  async recordBatch(r: BatchResult): Promise<{ eventId: string | null; alert: AlertRecord | null }> {
    return inTransaction(this.#pool, async (c) => {
      const cameraOf = await one(c, 'SELECT camera_id FROM analysis_batches WHERE id = $1', [r.batchId]);
      // The camera's row first (the lock order): one camera's results are recorded one at a
      // time, so the scene-alert plan sees the alert the previous result left.
      if (cameraOf) await one(c, 'SELECT 1 FROM analysis_cameras WHERE camera_id = $1 FOR UPDATE', [cameraOf.camera_id]);
      const batch = (await one(c, 'SELECT * FROM analysis_batches WHERE id = $1 FOR UPDATE', [r.batchId]))!;
      // Done already: a re-run after a crash that came after this commit, or another replica
      // that took the job when its lease ran out and finished first; nothing twice.
      if (batch.state === 'done') {
        await finishJob(c, r.jobId, r.now);
        const ev = await one(c, 'SELECT id FROM events WHERE batch_id = $1', [r.batchId]);
        return { eventId: (ev?.id as string | undefined) ?? null, alert: null };
      }
      for (const [frameId, detections] of Object.entries(r.detections)) {
        await run(c, 'UPDATE analysis_frames SET detections = $1 WHERE frame_id = $2', [JSON.stringify(detections), frameId]);
      }
      const stream: StreamDrafts = [];
      let alert: AlertRecord | null = null;
      let eventId: string | null = null;
      if (r.event) {
        const e = r.event;
        eventId = e.id;
        const cameraId = batch.camera_id as string;
        const deviceId = batch.device_id as string;
        // Locked: the scene-alert sweep cannot close the alert this event is about to join.
        const plan = r.planAlert(await this.#alerts.openAlertFor(c, SCENE_ALERT_KIND, deviceId, cameraId, true));
        const notifyAs = (event: 'alert.opened' | 'alert.escalated', on: boolean): Notify => (on ? (a) => r.notify(event, a) : () => []);
        if (plan.action === 'open') {
          const opened = await this.#alerts.openInTransaction(
            c,
            { id: plan.alertId, kind: SCENE_ALERT_KIND, deviceId, cameraId, openedAt: r.now, title: plan.title, detail: { ...plan.detail, eventId: e.id }, level: plan.level },
            notifyAs('alert.opened', plan.notify),
            r.now,
            stream,
          );
          alert = await this.#alerts.attachEventInTransaction(c, opened.alert.id, r.now, null, () => [], stream);
        } else if (plan.action === 'attach') {
          alert = await this.#alerts.attachEventInTransaction(c, plan.alertId, r.now, plan.escalateTo, notifyAs('alert.escalated', plan.notify), stream);
        }
        await run(
          c,
          `INSERT INTO events (id, batch_id, camera_id, device_id, started_at, ended_at, risk_score, level, summary, reasoning, observations,
             detections, source, model, off_spec, analysis_error, alert_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
          [
            e.id,
            r.batchId,
            cameraId,
            deviceId,
            e.startedAt,
            e.endedAt,
            e.riskScore,
            e.level,
            e.summary,
            e.reasoning,
            JSON.stringify(e.observations),
            JSON.stringify(e.detections),
            e.source,
            e.model,
            e.offSpec === null ? null : JSON.stringify(e.offSpec),
            e.analysisError,
            alert?.id ?? null,
            r.now,
          ],
        );
        stream.push({ type: 'event', payload: JSON.stringify({ eventId: e.id }) });
      }
      await run(c, `UPDATE analysis_batches SET state = 'done', outcome = $1, done_at = $2 WHERE id = $3`, [JSON.stringify(r.outcome), r.now, r.batchId]);
      await finishJob(c, r.jobId, r.now);
      await appendStreamDrafts(c, stream, r.now);
      return { eventId, alert };
    });
  }

  async getSettings(scope: 'site' | 'camera', id: string): Promise<Record<string, unknown>> {
    const row = await one(this.#pool, 'SELECT settings FROM analysis_settings WHERE scope = $1 AND scope_id = $2', [scope, id]);
    return row ? (JSON.parse(row.settings as string) as Record<string, unknown>) : {};
  }

  async setSettings(scope: 'site' | 'camera', id: string, settings: Record<string, unknown>, now: number): Promise<void> {
    if (Object.keys(settings).length === 0) {
      await run(this.#pool, 'DELETE FROM analysis_settings WHERE scope = $1 AND scope_id = $2', [scope, id]);
    } else {
      await run(
        this.#pool,
        `INSERT INTO analysis_settings (scope, scope_id, settings, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope, scope_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
        [scope, id, JSON.stringify(settings), now],
      );
    }
  }

  async counters(): Promise<AnalysisCounters> {
    const [jobRows, f, batchRows, events] = await Promise.all([
      all(this.#pool, 'SELECT kind, state, count(*) AS n FROM jobs GROUP BY kind, state'),
      // sum() of BIGINT is NUMERIC, which the driver gives as text: back to BIGINT.
      one(
        this.#pool,
        `SELECT sum(frames_seen)::bigint AS seen, sum(frames_skipped)::bigint AS skipped, sum(frames_invalid)::bigint AS invalid,
         sum(frames_batched)::bigint AS batched FROM analysis_cameras`,
      ),
      all(this.#pool, 'SELECT state, count(*) AS n FROM analysis_batches GROUP BY state'),
      one(this.#pool, 'SELECT count(*) AS n FROM events'),
    ]);
    const jobs = { frame: emptyStates(), batch: emptyStates() };
    for (const r of jobRows) jobs[r.kind as JobKind][r.state as JobState] = r.n as number;
    const batches: Record<BatchState, number> = { open: 0, ready: 0, done: 0 };
    for (const r of batchRows) batches[r.state as BatchState] = r.n as number;
    const n = (v: unknown) => (v as number | null | undefined) ?? 0;
    return {
      jobs,
      frames: { seen: n(f?.seen), skipped: n(f?.skipped), invalid: n(f?.invalid), batched: n(f?.batched) },
      batches,
      events: n(events?.n),
    };
  }
}

async function finishJob(c: PgClient, id: number, now: number): Promise<void> {
  await run(c, `UPDATE jobs SET state = 'done', updated_at = $1, lease_until = NULL, last_error = NULL WHERE id = $2`, [now, id]);
}

/** Marks an open batch ready and enqueues its job; false when it was no longer open. */
async function closeBatch(c: PgClient, id: string, reason: string, now: number): Promise<boolean> {
  const ready = await one(c, `UPDATE analysis_batches SET state = 'ready', close_reason = $1 WHERE id = $2 AND state = 'open' RETURNING camera_id`, [reason, id]);
  if (!ready) return false;
  await run(c, 'UPDATE analysis_cameras SET open_batch_id = NULL WHERE camera_id = $1 AND open_batch_id = $2', [ready.camera_id, id]);
  await run(c, `INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES ('batch', $1, 'pending', $2, $2, $2) ON CONFLICT DO NOTHING`, [id, now]);
  return true;
}

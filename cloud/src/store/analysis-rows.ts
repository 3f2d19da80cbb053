import type { AnalysisCameraState, BatchFrame, BatchRecord, BatchState, Job, JobKind, JobState } from './analysis-types.js';
import type { Row } from './sqlite-rows.js';

// Analysis rows → records, shared by the SQLite and the PostgreSQL stores.

/** The kind of alert scene events raise (one open per camera). */
export const SCENE_ALERT_KIND = 'scene';

/** How an idle batch's closing is explained: idle only, or it also grew after opening. */
export function dueBatchReason(r: Row): string {
  return (r.last_added_at as number) > (r.opened_at as number) ? 'idle or window' : 'idle';
}

export function emptyStates(): Record<JobState, number> {
  return { pending: 0, running: 0, done: 0, failed: 0 };
}

export function toJob(r: Row): Job {
  return { id: r.id as number, kind: r.kind as JobKind, ref: r.ref as string, attempts: r.attempts as number, createdAt: r.created_at as number };
}

export function toCameraState(r: Row): AnalysisCameraState {
  return {
    cameraId: r.camera_id as string,
    refFrameId: (r.ref_frame_id as string | null) ?? null,
    refDhash: (r.ref_dhash as string | null) ?? null,
    refCapturedAt: (r.ref_captured_at as number | null) ?? null,
    openBatchId: (r.open_batch_id as string | null) ?? null,
    framesSeen: r.frames_seen as number,
    framesSkipped: r.frames_skipped as number,
    framesInvalid: r.frames_invalid as number,
    framesBatched: r.frames_batched as number,
  };
}

export function toBatch(r: Row): BatchRecord {
  return {
    id: r.id as string,
    cameraId: r.camera_id as string,
    deviceId: r.device_id as string,
    state: r.state as BatchState,
    firstCapturedAt: r.first_captured_at as number,
    lastCapturedAt: r.last_captured_at as number,
    frameCount: r.frame_count as number,
    openedAt: r.opened_at as number,
    closeAt: r.close_at as number,
    closeReason: (r.close_reason as string | null) ?? null,
    outcome: r.outcome === null ? null : (JSON.parse(r.outcome as string) as Record<string, unknown>),
  };
}

export function toBatchFrame(r: Row): BatchFrame {
  return {
    frameId: r.frame_id as string,
    capturedAt: r.captured_at as number,
    objectKey: r.object_key as string,
    distance: (r.distance as number | null) ?? null,
    reason: (r.reason as string | null) ?? null,
  };
}

import type { RiskLevel } from '../analysis/analyser.js';
import type { Detection } from '../detect/object-detector.js';
import type { AlertRecord, NotificationDraft } from './alert-types.js';

// The analysis pipeline's persistence: the durable job queue, each camera's dedupe reference,
// the batches of changed frames, and the events they become. Every step's outcome is written
// in one transaction with the job that produced it, so a crash at any point either redoes the
// step or finds it done — never half of it, never twice.

export type JobKind = 'frame' | 'batch';

export interface Job {
  id: number;
  kind: JobKind;
  /** The frame id ('frame') or batch id ('batch'). */
  ref: string;
  /** Attempts started so far, this one included. */
  attempts: number;
  createdAt: number;
}

export type JobState = 'pending' | 'running' | 'done' | 'failed';

export interface CameraContext {
  cameraId: string;
  cameraKey: string;
  /** Its own name, else the one its device reports, else its key. */
  cameraName: string;
  deviceId: string;
  deviceName: string;
  siteId: string;
  site: string;
}

/** Each camera's dedupe reference and intake counters. */
export interface AnalysisCameraState {
  cameraId: string;
  /** The last frame admitted to analysis: new frames are compared with it. */
  refFrameId: string | null;
  refDhash: string | null;
  refCapturedAt: number | null;
  openBatchId: string | null;
  framesSeen: number;
  framesSkipped: number;
  framesInvalid: number;
  framesBatched: number;
}

/** What intake decided for one frame. */
export type IntakeDecision =
  | { kind: 'invalid'; reason: string }
  /** Closer than the threshold to the reference, which is recent: skipped and counted. */
  | { kind: 'duplicate'; distance: number }
  /** Goes to analysis and becomes the camera's reference. */
  | { kind: 'batched'; distance: number | null; reason: 'first' | 'changed' | 'periodic'; dhash: string };

/** How the camera's frames are grouped (from its analysis settings). */
export interface BatchPolicy {
  windowMs: number;
  idleMs: number;
  maxFrames: number;
}

export interface IntakeInput {
  jobId: number;
  frame: { id: string; cameraId: string; deviceId: string; capturedAt: number };
  decision: IntakeDecision;
  /** The camera's reference frame the decision was made against (null: it had none). */
  refFrameId: string | null;
  policy: BatchPolicy;
  newBatchId: string;
  now: number;
}

export type BatchState = 'open' | 'ready' | 'done';

export interface BatchRecord {
  id: string;
  cameraId: string;
  deviceId: string;
  state: BatchState;
  firstCapturedAt: number;
  lastCapturedAt: number;
  frameCount: number;
  openedAt: number;
  closeAt: number;
  closeReason: string | null;
  outcome: Record<string, unknown> | null;
}

export interface BatchFrame {
  frameId: string;
  capturedAt: number;
  objectKey: string;
  distance: number | null;
  reason: string | null;
}

export interface NewEvent {
  id: string;
  startedAt: number;
  endedAt: number;
  riskScore: number;
  level: RiskLevel;
  summary: string;
  reasoning: string;
  observations: string[];
  /** Per label: how many frames showed it, and the best score. */
  detections: { label: string; frames: number; maxScore: number }[];
  source: 'vision' | 'detector';
  model: string | null;
  offSpec: { problems: string[]; raw: string } | null;
  /** Why the vision model's answer is missing, when it is. */
  analysisError: string | null;
}

/** What the scene-alert rules decided for an event, given the camera's open scene alert. */
export type AlertPlan =
  | { action: 'none' }
  | { action: 'open'; alertId: string; title: string; level: RiskLevel; detail: Record<string, unknown>; notify: boolean }
  | { action: 'attach'; alertId: string; escalateTo: RiskLevel | null; notify: boolean };

export interface BatchResult {
  jobId: number;
  batchId: string;
  /** Per frame, what the detector found (frames it did not look at are left out). */
  detections: Record<string, Detection[]>;
  outcome: Record<string, unknown>;
  event: NewEvent | null;
  /** Called in the transaction with the camera's open scene alert (or null). */
  planAlert: (openSceneAlert: AlertRecord | null) => AlertPlan;
  /** Notifications for an alert change the plan made. */
  notify: (event: 'alert.opened' | 'alert.escalated', alert: AlertRecord) => NotificationDraft[];
  now: number;
}

export interface AnalysisCounters {
  jobs: Record<JobKind, Record<JobState, number>>;
  frames: { seen: number; skipped: number; invalid: number; batched: number };
  batches: Record<BatchState, number>;
  events: number;
}

export interface AnalysisStore {
  /**
   * Takes up to `limit` jobs of `kind` that are due (pending at or after runAt, or running with
   * an expired lease) and leases them until `leaseUntil`, oldest first.
   */
  claimJobs(kind: JobKind, now: number, limit: number, leaseUntil: number): Promise<Job[]>;
  /** Moves the lease of jobs still being worked on (so a long analysis is not taken twice). */
  extendLeases(ids: number[], leaseUntil: number): Promise<void>;
  /** Puts a job back for later; `countAttempt: false` when nothing was tried (breaker open). */
  retryJob(id: number, runAt: number, error: string, countAttempt: boolean): Promise<void>;
  failJob(id: number, error: string, now: number): Promise<void>;
  /** When the next job of `kind` is due (a running one: when its lease ends); null when none. */
  nextJobAt(kind: JobKind): Promise<number | null>;

  /** Names and scopes of a camera, for settings and for people; null when unknown. */
  cameraContext(cameraId: string): Promise<CameraContext | null>;
  cameraState(cameraId: string): Promise<AnalysisCameraState | null>;
  /**
   * Records intake's decision, moves the reference, fills or closes batches, ends the job.
   * False, and nothing written, when the camera's reference is no longer `refFrameId` (another
   * worker admitted a frame of this camera meanwhile): decide again against the new one.
   */
  recordIntake(i: IntakeInput): Promise<boolean>;
  /** Closes open batches whose window or idle time is over, enqueueing their jobs; how many. */
  closeDueBatches(now: number): Promise<number>;
  /** When the next open batch is due to close; null when none is open. */
  nextBatchCloseAt(): Promise<number | null>;
  getBatch(id: string): Promise<BatchRecord | null>;
  batchFrames(batchId: string): Promise<BatchFrame[]>;
  /** The batch's detections, event, alert change and notifications, and the job's end: one transaction. */
  recordBatch(r: BatchResult): Promise<{ eventId: string | null; alert: AlertRecord | null }>;

  /** Settings overrides of one site or camera ({} when none). */
  getSettings(scope: 'site' | 'camera', id: string): Promise<Record<string, unknown>>;
  setSettings(scope: 'site' | 'camera', id: string, settings: Record<string, unknown>, now: number): Promise<void>;

  counters(): Promise<AnalysisCounters>;
}

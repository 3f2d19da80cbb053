import { anyInteresting, interesting } from '../detect/coco.js';
import { DetectorError, type Detection, type ObjectDetector } from '../detect/object-detector.js';
import type { BatchFrame, BatchRecord, NewEvent } from '../store/analysis-types.js';
import { toAnalysisError, type Analyser, type AnalysisFrame } from './analyser.js';
import { detectorEvent, summariseDetections } from './detection-events.js';
import { inHours, localTime } from './hours.js';
import type { AnalysisSettings } from './settings.js';

// One closed batch → at most one event. The local detector looks at every frame first; only a
// batch with a person, a vehicle or an animal in it, or a large change of scene (the camera's
// first frames included), goes on to the vision model — detection first, then the language
// model, so a quiet camera costs no model call. Without a vision model, or when it refuses the
// batch, the detector's findings and the rules make the event (detection-events.ts).

/** The job should run again later: at `runAt`, counting this attempt or not (breaker open). */
export class RetryLater extends Error {
  readonly runAt: number;
  readonly countAttempt: boolean;

  constructor(message: string, runAt: number, countAttempt: boolean) {
    super(message);
    this.name = 'RetryLater';
    this.runAt = runAt;
    this.countAttempt = countAttempt;
  }
}

export interface BatchCamera {
  id: string;
  name: string;
  site: string;
}

export interface BatchInput {
  batch: BatchRecord;
  frames: BatchFrame[];
  camera: BatchCamera;
  settings: AnalysisSettings;
  /** This job's attempt, 1 for the first. */
  attempt: number;
  now: number;
}

export interface BatchDeps {
  detector: ObjectDetector | undefined;
  analyser: Analyser | undefined;
  /** The frame's bytes; null when the object is gone. */
  readFrame: (objectKey: string) => Promise<Buffer | null>;
  newEventId: () => string;
  /** After this many attempts a failing model is given up on for the batch (the detector's event stands). */
  maxAttempts: number;
  /** Delay before attempt `attempt + 1`. */
  retryDelay: (attempt: number) => number;
  signal?: AbortSignal | undefined;
}

export interface BatchOutcome {
  detections: Record<string, Detection[]>;
  outcome: Record<string, unknown>;
  event: NewEvent | null;
}

export async function analyseBatch(i: BatchInput, d: BatchDeps): Promise<BatchOutcome> {
  const { batch, settings: s } = i;
  const frames: (AnalysisFrame & { frameId: string; distance: number | null; reason: string | null })[] = [];
  const missing: string[] = [];
  for (const f of i.frames) {
    const jpeg = await d.readFrame(f.objectKey);
    if (jpeg) frames.push({ frameId: f.frameId, capturedAt: f.capturedAt, jpeg, detections: [], distance: f.distance, reason: f.reason });
    else missing.push(f.frameId);
  }
  const outcome: Record<string, unknown> = { frames: frames.length, ...(missing.length ? { missingFrames: missing } : {}) };
  if (frames.length === 0) return { detections: {}, outcome: { ...outcome, gate: 'empty' }, event: null };

  const detections: Record<string, Detection[]> = {};
  let detectorError: string | null = null;
  if (d.detector) {
    for (const f of frames) {
      try {
        const found = await d.detector.detect(f.jpeg, d.signal);
        detections[f.frameId] = found;
        f.detections = found.map(({ label, score }) => ({ label, score }));
      } catch (err) {
        const e = err instanceof DetectorError ? err : null;
        if (e?.code === 'DETECTOR_BAD_IMAGE') {
          detections[f.frameId] = [];
          continue;
        }
        detectorError = `${e?.code ?? 'DETECTOR_FAILED'}: ${(err as Error).message}`;
        if (e?.retryable !== false && i.attempt < d.maxAttempts) throw new RetryLater(detectorError, i.now + d.retryDelay(i.attempt), true);
        break;
      }
    }
  }
  const perFrame = frames.map((f) => detections[f.frameId] ?? []);
  const seen = perFrame.some((ds) => anyInteresting(interesting(ds)));
  const largeChange = frames.some((f) => f.reason === 'first' || (f.distance ?? 0) >= s.largeChangeDistance);
  const sceneAt = batch.lastCapturedAt;
  const local = localTime(sceneAt, s.timezone);
  const closed = inHours(s.closedHours, sceneAt, s.timezone);
  // Without a working detector nothing can gate: every batch goes to the model (fail open).
  const gate = !d.detector || detectorError !== null || seen || largeChange;
  const reasons = [...(seen ? ['objects'] : []), ...(largeChange ? ['large change'] : []), ...(!d.detector || detectorError ? ['no detector'] : [])];
  Object.assign(outcome, { closed, localTime: local.text, reasons, ...(detectorError ? { detectorError } : {}) });

  let analysisError: string | null = null;
  if (d.analyser && gate) {
    try {
      const r = await d.analyser.analyse(
        { camera: { id: i.camera.id, name: i.camera.name, site: i.camera.site, context: s.context }, localTime: local.text, closed, frames },
        d.signal,
      );
      const a = r.assessment;
      Object.assign(outcome, { gate: 'vision', model: r.model, attempts: r.attempts, latencyMs: r.latencyMs, usage: r.usage, offSpec: r.offSpec !== null });
      return {
        detections,
        outcome,
        event: {
          id: d.newEventId(),
          startedAt: batch.firstCapturedAt,
          endedAt: batch.lastCapturedAt,
          riskScore: a.riskScore,
          level: a.level,
          summary: a.summary,
          reasoning: a.reasoning,
          observations: a.observations,
          detections: summariseDetections(perFrame),
          source: 'vision',
          model: r.model,
          offSpec: r.offSpec,
          analysisError: null,
        },
      };
    } catch (err) {
      const e = toAnalysisError(err);
      analysisError = `${e.code}: ${e.message}`;
      if (e.code === 'ANALYSER_BREAKER_OPEN') throw new RetryLater(analysisError, e.retryAt ?? i.now + d.retryDelay(1), false);
      if (e.code === 'ANALYSER_ABORTED') throw new RetryLater(analysisError, i.now, false);
      if (e.retryable && i.attempt < d.maxAttempts) throw new RetryLater(analysisError, Math.max(e.retryAt ?? 0, i.now + d.retryDelay(i.attempt)), true);
      // Refused, or still failing after every attempt: the detector's event stands in.
      outcome.analysisError = analysisError;
    }
  }
  const event = detectorEvent({ id: d.newEventId(), startedAt: batch.firstCapturedAt, endedAt: batch.lastCapturedAt, perFrame, closed, localTime: local.text, analysisError });
  outcome.gate = event ? 'detector' : 'quiet';
  return { detections, outcome, event };
}

import type { Logger } from 'pino';
import type { AlertService } from '../alerts/alert-service.js';
import type { ObjectDetector } from '../detect/object-detector.js';
import { backoffDelay } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { Waker } from '../lib/waker.js';
import type { ObjectStore } from '../objects/types.js';
import type { AlertRecord } from '../store/alert-types.js';
import type { Job } from '../store/analysis-types.js';
import { SCENE_ALERT_KIND } from '../store/analysis-rows.js';
import type { CloudStore } from '../store/types.js';
import type { Analyser } from './analyser.js';
import { analyseBatch, RetryLater } from './batch-analysis.js';
import { decideIntake, inspectFrame } from './frame-intake.js';
import { planSceneAlert, sweepSceneAlerts } from './scene-alerts.js';
import { effectiveSettings, type AnalysisSettings } from './settings.js';

// The analysis pipeline's loops, all driven by the jobs table, so whatever a stopped process
// left (a frame not yet looked at, a batch half analysed) is picked up by the next start:
//
//   intake   frame jobs, one at a time: validate, dedupe, add to the camera's batch
//   batches  closes batches whose window or idle time is over (each becomes a batch job)
//   analyse  batch jobs, up to `concurrency` at once: detector, vision model, event, alert
//   sweep    scene alerts: close the quiet ones, re-send unacknowledged critical ones
//
// A job is leased while it runs and the lease is renewed, so a crashed process's job is taken
// again a lease later, and a slow analysis is never taken twice.

/** Frame jobs taken per round. */
const INTAKE_BATCH = 32;
/** Decisions retried when other workers keep moving the camera's reference. */
const INTAKE_RACE_TRIES = 10;
/** With nothing due, look again this often (another process may have added work). */
const IDLE_LOOK_MS = 5_000;
/** Scene alerts are swept this often. */
export const SWEEP_INTERVAL_MS = 15_000;
export const SWEEP_LEASE = 'scene-alert-sweep';
/** A batch job that keeps failing is put back at most this many times before its fallback. */
export const BATCH_MAX_ATTEMPTS = 8;
/** Frame jobs that fail (an unreadable object store) are retried this many times. */
const INTAKE_MAX_ATTEMPTS = 10;
/** Live stream messages are kept this long for Last-Event-ID replay. */
export const STREAM_RETENTION_MS = 7 * 86_400_000;

export interface PipelineOptions {
  store: CloudStore;
  objects: ObjectStore;
  alerts: AlertService;
  detector: ObjectDetector | undefined;
  analyser: Analyser | undefined;
  defaults: AnalysisSettings;
  /** Batch jobs analysed at once (the analyser has its own limit too). */
  concurrency: number;
  /** This process among the replicas sharing the database: the alert sweep runs in one at a time. */
  instance: string;
  /**
   * A job's lease, renewed every third of it while the job runs: how long a job a dead process
   * held waits before another takes it.
   */
  jobLeaseMs: number;
  clock: Clock;
  random: () => number;
  logger: Logger;
}

export interface PipelineStatus {
  lastIntakeAt: number | null;
  lastBatchAt: number | null;
  running: number;
  lastError: string | null;
}

export class AnalysisPipeline {
  readonly #o: PipelineOptions;
  readonly #waker: Waker;
  readonly #running = new Map<number, Promise<void>>();
  readonly #status: PipelineStatus = { lastIntakeAt: null, lastBatchAt: null, running: 0, lastError: null };
  #lastSweep = 0;
  #lastPrune = 0;
  /** Passes run one at a time (the loop's and runOnce()'s), so frames are taken in order. */
  #passes: Promise<void> = Promise.resolve();

  constructor(o: PipelineOptions) {
    this.#o = o;
    this.#waker = new Waker(o.clock.sleep);
  }

  /** New work was queued (a frame completed): look now rather than at the next scheduled time. */
  wake(): void {
    this.#waker.wake();
  }

  status(): PipelineStatus {
    return { ...this.#status, running: this.#running.size };
  }

  /** The loop; returns when `signal` aborts, after the batches in flight have ended. */
  async run(signal: AbortSignal): Promise<void> {
    const renew = this.#renewLeases(signal);
    while (!signal.aborted) {
      let wait = IDLE_LOOK_MS;
      try {
        await this.#exclusive(() => this.#pass(signal, false));
        wait = await this.#nextWait();
        this.#status.lastError = null;
      } catch (err) {
        if (signal.aborted) break;
        this.#status.lastError = (err as Error).message;
        this.#o.logger.error({ err }, 'analysis pass failed');
      }
      await this.#waker.wait(wait, signal);
    }
    await Promise.allSettled(this.#running.values());
    await renew;
    await this.#o.store.leases.release(SWEEP_LEASE, this.#o.instance).catch((err: unknown) => this.#o.logger.warn({ err }, 'could not give up the alert sweep lease'));
  }

  /**
   * Everything that is due now, to the end: intake, batch closing, every batch job (awaited),
   * the sweep. Tests and benchmarks drive the pipeline with this instead of run().
   */
  async runOnce(signal: AbortSignal = new AbortController().signal): Promise<void> {
    await this.#exclusive(() => this.#pass(signal, true));
    await Promise.allSettled(this.#running.values());
  }

  #exclusive(fn: () => Promise<void>): Promise<void> {
    const p = this.#passes.then(fn);
    this.#passes = p.catch(() => undefined);
    return p;
  }

  async #pass(signal: AbortSignal, drain: boolean): Promise<void> {
    const { store, clock } = this.#o;
    while (!signal.aborted && (await this.#intake()) > 0);
    await store.analysis.closeDueBatches(clock.now());
    await this.#startBatches(signal, drain);
    const now = clock.now();
    // Jobs are shared through the queue; the sweeps run in the one replica holding the lease.
    if (now - this.#lastSweep >= SWEEP_INTERVAL_MS || drain) {
      this.#lastSweep = now;
      if (await store.leases.acquire(SWEEP_LEASE, this.#o.instance, now, 2 * SWEEP_INTERVAL_MS + 5_000)) {
        await this.#sweep();
        if (now - this.#lastPrune >= 3_600_000) {
          this.#lastPrune = now;
          await store.events.pruneStream(now - STREAM_RETENTION_MS);
        }
      }
    }
  }

  async #nextWait(): Promise<number> {
    const { store, clock } = this.#o;
    const times = await Promise.all([store.analysis.nextJobAt('frame'), store.analysis.nextBatchCloseAt(), this.#running.size < this.#o.concurrency ? store.analysis.nextJobAt('batch') : null]);
    const now = clock.now();
    let wait = Math.min(IDLE_LOOK_MS, SWEEP_INTERVAL_MS - (now - this.#lastSweep));
    for (const t of times) if (t !== null) wait = Math.min(wait, t - now);
    return Math.max(0, wait);
  }

  /** One round of frame jobs; how many were taken. */
  async #intake(): Promise<number> {
    const { store, clock } = this.#o;
    const now = clock.now();
    const jobs = await store.analysis.claimJobs('frame', now, INTAKE_BATCH, now + this.#o.jobLeaseMs);
    for (const job of jobs) {
      try {
        await this.#intakeOne(job);
      } catch (err) {
        await this.#failedAttempt(job, err, INTAKE_MAX_ATTEMPTS);
      }
    }
    if (jobs.length > 0) this.#status.lastIntakeAt = clock.now();
    return jobs.length;
  }

  async #intakeOne(job: Job): Promise<void> {
    const { store, clock } = this.#o;
    const frame = await store.getFrame(job.ref);
    if (!frame) {
      await store.analysis.failJob(job.id, 'FRAME_NOT_FOUND: the frame record is gone', clock.now());
      return;
    }
    const settings = await this.#settings(frame.cameraId);
    const bytes = await this.#read(frame.objectKey);
    const inspection = bytes ? await inspectFrame(bytes) : { ok: false as const, reason: 'the object is missing from the object store' };
    // Another replica may admit a frame of this camera between our read of its reference and
    // our write; the store then refuses, and the frame is decided again against the new one.
    for (let tries = 1; ; tries++) {
      const state = await store.analysis.cameraState(frame.cameraId);
      const decision = decideIntake(state, frame.capturedAt, inspection, settings);
      const recorded = await store.analysis.recordIntake({
        jobId: job.id,
        frame: { id: frame.id, cameraId: frame.cameraId, deviceId: frame.deviceId, capturedAt: frame.capturedAt },
        decision,
        refFrameId: state?.refFrameId ?? null,
        policy: { windowMs: settings.batchWindowS * 1000, idleMs: settings.batchIdleS * 1000, maxFrames: settings.batchMaxFrames },
        newBatchId: newId('bat'),
        now: clock.now(),
      });
      if (recorded) {
        if (decision.kind === 'invalid') this.#o.logger.warn({ frameId: frame.id, cameraId: frame.cameraId, reason: decision.reason }, 'frame is not a valid JPEG; skipped, not analysed');
        return;
      }
      if (tries >= INTAKE_RACE_TRIES) throw new Error(`INTAKE_RACE: the reference of camera ${frame.cameraId} kept moving`);
    }
  }

  async #startBatches(signal: AbortSignal, drain: boolean): Promise<void> {
    const { store, clock } = this.#o;
    for (;;) {
      const free = this.#o.concurrency - this.#running.size;
      if (free <= 0 || signal.aborted) {
        if (drain && this.#running.size > 0) {
          await Promise.race(this.#running.values());
          continue;
        }
        return;
      }
      const now = clock.now();
      const jobs = await store.analysis.claimJobs('batch', now, free, now + this.#o.jobLeaseMs);
      if (jobs.length === 0) return;
      for (const job of jobs) {
        const p = this.#batchJob(job, signal).finally(() => {
          this.#running.delete(job.id);
          this.wake();
        });
        this.#running.set(job.id, p);
      }
    }
  }

  async #batchJob(job: Job, signal: AbortSignal): Promise<void> {
    const { store, clock, logger } = this.#o;
    const log = logger.child({ batchId: job.ref, jobId: job.id });
    try {
      const batch = await store.analysis.getBatch(job.ref);
      if (!batch) {
        await store.analysis.failJob(job.id, 'BATCH_NOT_FOUND', clock.now());
        return;
      }
      const [frames, cam, settings] = await Promise.all([store.analysis.batchFrames(batch.id), store.analysis.cameraContext(batch.cameraId), this.#settings(batch.cameraId)]);
      const r = await analyseBatch(
        {
          batch,
          frames,
          camera: { id: batch.cameraId, name: cam?.cameraName ?? batch.cameraId, site: cam?.site ?? '' },
          settings,
          attempt: job.attempts,
          now: clock.now(),
        },
        {
          detector: this.#o.detector,
          analyser: this.#o.analyser,
          readFrame: (key) => this.#read(key),
          newEventId: () => newId('evt'),
          maxAttempts: BATCH_MAX_ATTEMPTS,
          retryDelay: (attempt) => backoffDelay(attempt, this.#o.random),
          signal,
        },
      );
      const now = clock.now();
      const saved = await store.analysis.recordBatch({
        jobId: job.id,
        batchId: batch.id,
        detections: r.detections,
        outcome: r.outcome,
        event: r.event,
        planAlert: (open: AlertRecord | null) => (r.event ? planSceneAlert(r.event, settings, open, now, newId('alt')) : { action: 'none' }),
        notify: (event, alert) => this.#o.alerts.notifier(event, now)(alert),
        now,
      });
      this.#o.alerts.enqueued();
      this.#status.lastBatchAt = now;
      if (r.event) {
        log.info({ eventId: saved.eventId, cameraId: batch.cameraId, level: r.event.level, riskScore: r.event.riskScore, source: r.event.source, alertId: saved.alert?.id ?? null }, `event: ${r.event.summary}`);
      } else {
        log.debug({ outcome: r.outcome }, 'batch analysed: nothing to report');
      }
    } catch (err) {
      if (err instanceof RetryLater) {
        if (signal.aborted) return; // the lease runs out; the next start takes it again
        await store.analysis.retryJob(job.id, err.runAt, err.message, err.countAttempt);
        log.info({ runAt: err.runAt, attempt: job.attempts, counted: err.countAttempt, reason: err.message }, 'batch analysis postponed');
        return;
      }
      await this.#failedAttempt(job, err, BATCH_MAX_ATTEMPTS);
    }
  }

  /** An unexpected failure (the database, the object store): retried with backoff, then failed. */
  async #failedAttempt(job: Job, err: unknown, maxAttempts: number): Promise<void> {
    const { store, clock, logger } = this.#o;
    const message = (err as Error).message ?? String(err);
    if (job.attempts >= maxAttempts) {
      logger.error({ err, jobId: job.id, kind: job.kind, ref: job.ref, attempts: job.attempts }, 'analysis job failed; giving up');
      await store.analysis.failJob(job.id, message, clock.now());
    } else {
      logger.warn({ err, jobId: job.id, kind: job.kind, ref: job.ref, attempts: job.attempts }, 'analysis job failed; will retry');
      await store.analysis.retryJob(job.id, clock.now() + backoffDelay(job.attempts, this.#o.random), message, true);
    }
  }

  async #sweep(): Promise<void> {
    const { store, alerts, clock, logger } = this.#o;
    const open = (await store.alerts.openAlerts()).filter((a) => a.kind === SCENE_ALERT_KIND);
    if (open.length === 0) return;
    await sweepSceneAlerts({ alerts, open, settingsOf: (a) => this.#settings(a.cameraId ?? ''), now: clock.now(), logger });
  }

  /** Renews the leases of the batch jobs in flight until `signal` aborts. */
  async #renewLeases(signal: AbortSignal): Promise<void> {
    const { store, clock } = this.#o;
    while (!signal.aborted) {
      await clock.sleep(this.#o.jobLeaseMs / 3, signal);
      if (signal.aborted || this.#running.size === 0) continue;
      try {
        await store.analysis.extendLeases([...this.#running.keys()], clock.now() + this.#o.jobLeaseMs);
      } catch (err) {
        this.#o.logger.error({ err }, 'renewing analysis job leases failed');
      }
    }
  }

  async #settings(cameraId: string): Promise<AnalysisSettings> {
    const { store } = this.#o;
    const cam = await store.analysis.cameraContext(cameraId);
    const [site, camera] = await Promise.all([cam ? store.analysis.getSettings('site', cam.siteId) : {}, store.analysis.getSettings('camera', cameraId)]);
    return effectiveSettings(this.#o.defaults, site, camera);
  }

  async #read(key: string): Promise<Buffer | null> {
    const obj = await this.#o.objects.openRead(key);
    if (!obj) return null;
    const chunks: Buffer[] = [];
    for await (const c of obj.stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}

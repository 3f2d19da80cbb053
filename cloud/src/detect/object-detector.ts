// The local object detector: the embedded default analysis of uploaded frames and the cost
// gate in front of the optional vision LLM. A COCO model that ships inside an npm package
// (@vladmandic/human's centernet on tfjs WASM) runs offline in a worker thread, so ~170 ms of
// inference per frame never blocks the server.
//
// WorkerDetector owns that worker: requests wait in a queue and run one at a time; each has a
// time limit, after which the worker is ended and a new one is started for the next request;
// a worker that crashes fails what was waiting and is restarted by the next call.

import { jpegProblem } from '@vigil/protocol';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { DetectorError } from './detector-error.js';
import { DetectorThread } from './detector-thread.js';
import type { WorkerSetup } from './worker-protocol.js';

export { DetectorError, DETECTOR_ERRORS, type DetectorErrorCode } from './detector-error.js';

/** One object found in an image. */
export interface Detection {
  /** A COCO class name ('person', 'car', 'dog', ...); coco.ts groups the ones that matter. */
  label: string;
  /** The model's confidence, 0..1. */
  score: number;
  /**
   * [x, y, width, height] in whole pixels of the image that was given (not the scaled copy the
   * model saw), top-left origin, as stored: an EXIF orientation tag is not applied.
   */
  box: [number, number, number, number];
}

export interface ObjectDetector {
  /** Objects in one JPEG, best first. Rejects with a DetectorError. */
  detect(jpeg: Buffer, signal?: AbortSignal): Promise<Detection[]>;
  close(): Promise<void>;
}

export const DETECTOR_DEFAULTS = {
  /** Below this the model's guesses are mostly wrong on camera frames. */
  minScore: 0.35,
  /** Per detection, from when the worker gets the image; ~170 ms is normal on a small CPU. */
  timeoutMs: 20_000,
  /** Loading the model and one warm-up detection; ~1 s normally, more on a busy machine. */
  startTimeoutMs: 60_000,
  /** Requests waiting beyond this are refused (DETECTOR_BUSY) rather than held in memory. */
  maxQueue: 32,
  /** Images are scaled to this long side first: the model's input is 640 px anyway. */
  maxSidePx: 640,
  maxDetected: 20,
} as const;

export interface WorkerDetectorOptions {
  minScore?: number;
  timeoutMs?: number;
  startTimeoutMs?: number;
  maxQueue?: number;
  maxSidePx?: number;
  maxDetected?: number;
  logger?: Logger;
  now?: () => number;
  /**
   * The worker module. Defaults to detector-worker next to this file (same extension, so it is
   * .js when built and .ts under tap). Tests wrap it to make a worker crash.
   */
  workerUrl?: URL;
}

export interface DetectorStatus {
  /** A worker is loaded and running. */
  ready: boolean;
  /** Requests waiting, not counting the one under way. */
  queued: number;
  /** Workers started after the first (after a timeout or a crash). */
  restarts: number;
  /** Model load plus warm-up of the current (or last) worker. */
  loadMs: number | null;
  lastOkAt: number | null;
  lastError: string | null;
}

interface Job {
  jpeg: Buffer;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  settled: boolean;
  resolve(d: Detection[]): void;
  reject(err: DetectorError): void;
  onAbort(): void;
}

type Settings = Required<Omit<WorkerDetectorOptions, 'workerUrl'>> & { workerUrl: URL };

/** detector-worker with this module's own extension: .js next to the built file, .ts under tap. */
function defaultWorkerUrl(): URL {
  return new URL(`./detector-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
}

function settings(o: WorkerDetectorOptions): Settings {
  const s: Settings = {
    ...DETECTOR_DEFAULTS,
    logger: pino({ enabled: false }),
    now: Date.now,
    workerUrl: defaultWorkerUrl(),
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  };
  if (!(s.minScore >= 0 && s.minScore <= 1)) throw new ConfigError(`detector minScore must be within 0..1, not ${s.minScore}`);
  for (const k of ['timeoutMs', 'startTimeoutMs', 'maxQueue', 'maxSidePx', 'maxDetected'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new ConfigError(`detector ${k} must be a positive integer, not ${s[k]}`);
  }
  return s;
}

export class WorkerDetector implements ObjectDetector {
  readonly #s: Settings;
  readonly #log: Logger;
  readonly #queue: Job[] = [];
  #thread: DetectorThread | null = null;
  #starting: Promise<DetectorThread> | null = null;
  #running: Job | null = null;
  #draining = false;
  #closed = false;
  #started = 0;
  readonly #status = { loadMs: null as number | null, lastOkAt: null as number | null, lastError: null as string | null };

  /** Starts the worker and resolves once its model is loaded. Rejects with DETECTOR_FAILED if it cannot load. */
  static async start(o: WorkerDetectorOptions = {}): Promise<WorkerDetector> {
    const d = new WorkerDetector(settings(o));
    await d.#ready();
    return d;
  }

  private constructor(s: Settings) {
    this.#s = s;
    this.#log = s.logger;
  }

  /**
   * Objects in one JPEG scoring at least minScore. Requests run one at a time in the order
   * made. `timeoutMs` overrides the detector's limit for this call; the limit counts from when
   * the worker gets the image (a wait in the queue is ended by `signal`, or DETECTOR_BUSY).
   */
  detect(jpeg: Buffer, signal?: AbortSignal, o: { timeoutMs?: number } = {}): Promise<Detection[]> {
    if (this.#closed) return Promise.reject(new DetectorError('DETECTOR_CLOSED', 'the detector is closed'));
    if (signal?.aborted) return Promise.reject(new DetectorError('DETECTOR_ABORTED', 'the detection was aborted', { cause: signal.reason }));
    // The cheap checks here (start and end markers) spare the worker a round trip; a JPEG
    // that has both and still does not decode is refused by the worker.
    const problem = jpegProblem(jpeg);
    if (problem) return Promise.reject(new DetectorError('DETECTOR_BAD_IMAGE', `the image is not a whole JPEG (${problem})`));
    if (this.#queue.length >= this.#s.maxQueue) {
      return Promise.reject(new DetectorError('DETECTOR_BUSY', `${this.#queue.length} detections are already waiting`));
    }
    return new Promise<Detection[]>((resolve, reject) => {
      const job: Job = {
        jpeg,
        timeoutMs: o.timeoutMs ?? this.#s.timeoutMs,
        signal,
        settled: false,
        resolve,
        reject,
        onAbort: () => {
          const i = this.#queue.indexOf(job);
          if (i >= 0) this.#queue.splice(i, 1);
          // A detection under way cannot be stopped short of ending the worker, which would
          // cost a model load; it finishes and its result is dropped.
          this.#fail(job, new DetectorError('DETECTOR_ABORTED', 'the detection was aborted', { cause: signal?.reason }));
        },
      };
      signal?.addEventListener('abort', job.onAbort, { once: true });
      this.#queue.push(job);
      void this.#drain();
    });
  }

  status(): DetectorStatus {
    return { ready: this.#thread?.alive ?? false, queued: this.#queue.length, restarts: Math.max(0, this.#started - 1), ...this.#status };
  }

  /** Fails every request (DETECTOR_CLOSED) and ends the worker. */
  async close(): Promise<void> {
    this.#closed = true;
    const err = new DetectorError('DETECTOR_CLOSED', 'the detector was closed');
    if (this.#running) this.#fail(this.#running, err);
    this.#failQueued(err);
    const starting = this.#starting;
    if (starting) await starting.catch(() => undefined);
    await this.#thread?.terminate();
    this.#thread = null;
  }

  /** The running worker, or a new one once it has loaded. */
  #ready(): Promise<DetectorThread> {
    if (this.#thread?.alive) return Promise.resolve(this.#thread);
    if (this.#starting) return this.#starting;
    this.#thread = null;
    const setup: WorkerSetup = { minScore: this.#s.minScore, maxDetected: this.#s.maxDetected, maxSidePx: this.#s.maxSidePx };
    this.#started++;
    const starting = DetectorThread.start(this.#s.workerUrl, setup, { logger: this.#log, startTimeoutMs: this.#s.startTimeoutMs }).then(
      async (t) => {
        if (this.#closed) {
          await t.terminate();
          throw new DetectorError('DETECTOR_CLOSED', 'the detector was closed while its worker started');
        }
        this.#thread = t;
        this.#status.loadMs = t.loadMs;
        this.#log.info({ loadMs: Math.round(t.loadMs), backend: t.backend, restarts: this.#started - 1 }, 'object detector ready');
        return t;
      },
      (err: unknown) => {
        this.#status.lastError = (err as Error).message;
        this.#log.error({ err }, 'the object detector could not start');
        throw err;
      },
    );
    this.#starting = starting;
    void starting.finally(() => {
      if (this.#starting === starting) this.#starting = null;
    }).catch(() => undefined);
    return starting;
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (!this.#closed) {
        const job = this.#queue.shift();
        if (!job) break;
        // Running from here on (close() fails it), though it may first wait for a worker.
        this.#running = job;
        try {
          const thread = await this.#ready();
          if (!job.settled) await this.#run(thread, job);
        } catch (err) {
          // A worker that cannot start would fail every request after this one too.
          this.#fail(job, asDetectorError(err));
          this.#failQueued(asDetectorError(err));
        } finally {
          this.#running = null;
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Runs one job; returns when the worker is free again (answered, ended or dead). */
  async #run(thread: DetectorThread, job: Job): Promise<void> {
    const detection = thread.detect(job.jpeg);
    detection.catch(() => undefined); // also settled when the time limit wins the race
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), job.timeoutMs);
    });
    try {
      const r = await Promise.race([detection, timedOut]);
      if (r === 'timeout') {
        this.#log.warn({ timeoutMs: job.timeoutMs }, 'object detection timed out; restarting the worker');
        this.#status.lastError = `timed out after ${job.timeoutMs} ms`;
        this.#thread = null;
        await thread.terminate();
        this.#fail(job, new DetectorError('DETECTOR_TIMEOUT', `no detection within ${job.timeoutMs} ms`));
        return;
      }
      this.#status.lastOkAt = this.#s.now();
      this.#settle(job, r.detections);
    } catch (err) {
      const e = asDetectorError(err);
      this.#status.lastError = e.message;
      this.#fail(job, e);
      if (!thread.alive && !this.#closed) {
        this.#log.error({ err: e }, 'the object detector worker died; it restarts with the next request');
        this.#thread = null;
        // What waited may have been sent after the image that killed it: fail it too rather
        // than risk a crash loop through the queue; callers retry (DETECTOR_FAILED is retryable).
        this.#failQueued(new DetectorError('DETECTOR_FAILED', `the detector worker died before this image was analysed: ${e.message}`, { cause: e }));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #settle(job: Job, detections: Detection[]): void {
    if (job.settled) return;
    job.settled = true;
    job.signal?.removeEventListener('abort', job.onAbort);
    job.resolve(detections);
  }

  #fail(job: Job, err: DetectorError): void {
    if (job.settled) return;
    job.settled = true;
    job.signal?.removeEventListener('abort', job.onAbort);
    job.reject(err);
  }

  #failQueued(err: DetectorError): void {
    for (const job of this.#queue.splice(0)) this.#fail(job, err);
  }
}

function asDetectorError(err: unknown): DetectorError {
  if (err instanceof DetectorError) return err;
  return new DetectorError('DETECTOR_FAILED', (err as Error).message ?? String(err), { cause: err });
}

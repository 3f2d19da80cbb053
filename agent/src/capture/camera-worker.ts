// One camera's capture loop. Ticks at a fixed rate on the injected clock (a slow capture does
// not push the rhythm back), skips a tick while the previous capture still runs, bounds every
// capture with a wall-clock timeout, and hands each good capture to the sink (the outbox).
// A failure is counted and logged, and the loop carries on; only the AbortSignal stops it.
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../lib/clock.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { redactSecrets, redactUrlCredentials } from './capture-errors.js';
import {
  DEFAULT_IO_TIMEOUT_MS,
  captureFrame,
  type CaptureFunction,
  type FrameCaptureResult,
  type RtspTransport,
} from './ffmpeg-capture.js';
import type { CaptureSink } from './types.js';

export const DEFAULT_CAPTURE_INTERVAL_MS = 30_000;
/**
 * The worker's own watchdog fires this long (clock ms) after the capture timeout: the capture
 * function's hard timer normally ends it first, with ffmpeg's stderr in the message; the
 * watchdog is the backstop for an injected capture or one that ignores its timer.
 */
export const CAPTURE_WATCHDOG_GRACE_MS = 2_000;
/** Per-capture work dirs start with this; leftovers from a crash are swept at start. */
const CAPTURE_DIR_PREFIX = 'cap-';

export interface CameraConfig {
  id: string;
  name: string;
  /** Stream URL without credentials, e.g. rtsp://10.0.0.7:554/stream1. */
  url: string;
  transport: RtspTransport;
  username?: string;
  password?: string;
  /** Wall-clock limit per capture (clock ms); ffmpeg is SIGKILLed past it. */
  captureTimeoutMs: number;
  /** Tick period (clock ms). */
  intervalMs: number;
}

export interface CameraWorkerOptions {
  camera: CameraConfig;
  clock: Clock;
  log: Logger;
  /** This camera's work area; each capture gets its own subdirectory. Same filesystem as the spool, so the sink can rename. */
  workDir: string;
  sink: CaptureSink;
  /** Replaces the ffmpeg capture (unit tests). */
  capture?: CaptureFunction;
  ffmpegPath?: string;
  /** ffmpeg's socket I/O timeout (clock ms). */
  rtspTimeoutMs?: number;
}

export interface CameraWorkerError {
  code: string;
  message: string;
  /** Monotonic clock ms. */
  at: number;
  /** Whether the camera (capture) or the hand-over to the outbox (sink) failed. */
  stage: 'capture' | 'sink';
}

/** Read by the health monitor and the heartbeat; a snapshot, safe to keep. */
export interface CameraWorkerStatus {
  camera: string;
  /** A capture is in flight. */
  running: boolean;
  ticks: number;
  /** Captures taken and accepted by the sink. */
  capturesOk: number;
  /** Capture failures by code (CAPTURE_TIMEOUT, CAPTURE_FAILED, ...). */
  failures: Record<string, number>;
  /** Good captures the sink refused (DISK_FULL, ...), by code; their files were deleted. */
  sinkFailures: Record<string, number>;
  /** Ticks skipped because the previous capture was still running. */
  skippedTicks: number;
  /** Failures (capture or sink) since the last success. */
  consecutiveFailures: number;
  /** Monotonic clock ms of the last capture the sink accepted. */
  lastSuccessAt: number | null;
  /** Monotonic clock ms of the last capture started. */
  lastAttemptAt: number | null;
  /** Clock ms the last successful capture took. */
  lastCaptureMs: number | null;
  lastError: CameraWorkerError | null;
}

export class CameraWorker {
  readonly #camera: CameraConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #workDir: string;
  readonly #sink: CaptureSink;
  readonly #capture: CaptureFunction;
  readonly #ffmpegPath: string | undefined;
  readonly #rtspTimeoutMs: number;
  #started = false;
  #inFlight: Promise<void> | null = null;
  #seq = 0;
  #status: Omit<CameraWorkerStatus, 'running'>;

  constructor(opts: CameraWorkerOptions) {
    const { camera } = opts;
    for (const key of ['intervalMs', 'captureTimeoutMs'] as const) {
      if (!(camera[key] > 0)) throw new RangeError(`camera ${camera.id}: ${key} must be > 0, got ${camera[key]}`);
    }
    this.#camera = camera;
    this.#clock = opts.clock;
    // One `camera` field per line, whether or not the caller already bound it.
    this.#log = opts.log.bindings().camera === camera.id ? opts.log : opts.log.child({ camera: camera.id });
    this.#workDir = opts.workDir;
    this.#sink = opts.sink;
    this.#capture = opts.capture ?? captureFrame;
    this.#ffmpegPath = opts.ffmpegPath;
    this.#rtspTimeoutMs = opts.rtspTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
    this.#status = {
      camera: camera.id,
      ticks: 0,
      capturesOk: 0,
      failures: {},
      sinkFailures: {},
      skippedTicks: 0,
      consecutiveFailures: 0,
      lastSuccessAt: null,
      lastAttemptAt: null,
      lastCaptureMs: null,
      lastError: null,
    };
  }

  status(): CameraWorkerStatus {
    const s = this.#status;
    return {
      ...s,
      running: this.#inFlight !== null,
      failures: { ...s.failures },
      sinkFailures: { ...s.sinkFailures },
      lastError: s.lastError && { ...s.lastError },
    };
  }

  /** Runs until `signal` aborts; then kills a running capture, waits for it and resolves. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`CameraWorker ${this.#camera.id} already started`);
    this.#started = true;
    const clock = this.#clock;
    const interval = this.#camera.intervalMs;
    this.#log.info({ url: redactUrlCredentials(this.#camera.url), intervalMs: interval }, 'camera worker started');
    await this.#sweepWorkDir();

    let next = clock.monotonic();
    while (!signal.aborted) {
      const wait = next - clock.monotonic();
      if (wait > 0) {
        await clock.sleep(wait, signal);
        continue;
      }
      this.#tick(signal);
      // Fixed rate: the next tick is due one interval after this one was, not after the capture.
      next += interval;
      const now = clock.monotonic();
      if (now >= next) {
        // Far behind (event loop stalled, host suspended): realign instead of bursting.
        const missed = Math.floor((now - next) / interval) + 1;
        this.#log.warn({ missed }, 'capture ticks missed; realigning the rhythm');
        next += missed * interval;
      }
    }
    if (this.#inFlight) await this.#inFlight;
    this.#log.info('camera worker stopped');
  }

  #tick(stop: AbortSignal): void {
    this.#status.ticks++;
    if (this.#inFlight) {
      this.#status.skippedTicks++;
      this.#log.info({ skippedTicks: this.#status.skippedTicks }, 'previous capture still running; tick skipped');
      return;
    }
    this.#inFlight = this.#captureOnce(stop)
      .catch((err: unknown) => this.#log.error({ err }, 'capture cycle crashed'))
      .finally(() => {
        this.#inFlight = null;
      });
  }

  async #captureOnce(stop: AbortSignal): Promise<void> {
    const clock = this.#clock;
    const cam = this.#camera;
    const capturedAt = clock.now();
    const t0 = clock.monotonic();
    this.#status.lastAttemptAt = t0;
    const dir = join(this.#workDir, `${CAPTURE_DIR_PREFIX}${capturedAt}-${++this.#seq}`);

    // Kill the capture on stop, or when the clock says it has run far too long.
    const kill = new AbortController();
    const onStop = (): void => kill.abort();
    stop.addEventListener('abort', onStop, { once: true });
    const watchdog = new AbortController();
    const watchdogMs = cam.captureTimeoutMs + CAPTURE_WATCHDOG_GRACE_MS;
    let timedOut = false;
    void clock.sleep(watchdogMs, watchdog.signal).then(() => {
      if (watchdog.signal.aborted) return;
      timedOut = true;
      kill.abort();
    });

    let result: FrameCaptureResult;
    try {
      await mkdir(dir, { recursive: true });
      result = await this.#capture({
        url: cam.url,
        username: cam.username,
        password: cam.password,
        transport: cam.transport,
        workDir: dir,
        timeoutMs: clock.toRealMs(cam.captureTimeoutMs),
        ioTimeoutMs: clock.toRealMs(this.#rtspTimeoutMs),
        ffmpegPath: this.#ffmpegPath,
        signal: kill.signal,
      });
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (timedOut) {
        const msg = `capture still running ${watchdogMs} ms after it started; killed by the worker`;
        this.#fail('capture', 'CAPTURE_TIMEOUT', new Error(msg, { cause: err }));
        return;
      }
      let code = errorCode(err) ?? 'CAPTURE_FAILED';
      if (code === 'ENOSPC' || code === 'EDQUOT') code = 'DISK_FULL'; // the work dir itself
      if (code === 'CAPTURE_ABORTED' && stop.aborted) {
        this.#log.info('capture cancelled: worker stopping');
        return;
      }
      this.#fail('capture', code, err);
      return;
    } finally {
      watchdog.abort();
      stop.removeEventListener('abort', onStop);
    }

    const elapsed = clock.monotonic() - t0;
    try {
      await this.#sink({ camera: cam.id, capturedAt, dhash: result.dhash, files: result.files });
    } catch (err) {
      // The sink did not take the files, so they are ours to delete: a full disk must not
      // fill up further with captures nobody will upload.
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      this.#fail('sink', errorCode(err) ?? 'SINK_FAILED', err);
      return;
    }
    const s = this.#status;
    s.capturesOk++;
    s.consecutiveFailures = 0;
    s.lastSuccessAt = clock.monotonic();
    s.lastCaptureMs = elapsed;
    this.#log.debug({ capturedAt, ms: Math.round(elapsed), dhash: result.dhash.slice(0, 16) }, 'capture ok');
    // The sink moved the files into the spool; anything left is not ours to delete.
    await rmdir(dir).catch((err: unknown) => {
      if (errorCode(err) !== 'ENOENT') this.#log.warn({ dir, code: errorCode(err) }, 'capture work dir not empty after the sink');
    });
  }

  #fail(stage: 'capture' | 'sink', code: string, err: unknown): void {
    const s = this.#status;
    const counts = stage === 'capture' ? s.failures : s.sinkFailures;
    counts[code] = (counts[code] ?? 0) + 1;
    s.consecutiveFailures++;
    const raw = err instanceof Error ? err.message : String(err);
    const message = redactSecrets(raw, [this.#camera.password]);
    s.lastError = { code, message, at: this.#clock.monotonic(), stage };
    const fields = { code, stage, consecutiveFailures: s.consecutiveFailures, err: message };
    if (stage === 'sink') this.#log.error(fields, 'capture lost: the outbox refused it; files deleted');
    else this.#log.warn(fields, 'capture failed');
  }

  /** Removes per-capture dirs left behind by a crash; the work area holds nothing else of value. */
  async #sweepWorkDir(): Promise<void> {
    try {
      await mkdir(this.#workDir, { recursive: true });
      const stale = (await readdir(this.#workDir)).filter((n) => n.startsWith(CAPTURE_DIR_PREFIX));
      await Promise.all(stale.map((n) => rm(join(this.#workDir, n), { recursive: true, force: true })));
      if (stale.length) this.#log.info({ removed: stale.length }, 'removed leftover capture work dirs');
    } catch (err) {
      // Not fatal: each capture creates its own dir and reports what goes wrong there.
      this.#log.warn({ code: errorCode(err), dir: this.#workDir }, 'cannot prepare the capture work dir');
    }
  }
}

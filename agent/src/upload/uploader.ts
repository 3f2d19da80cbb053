import { readFile, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { CompleteResponse, PresignRequest, PresignResponse, Variant } from '@vigil/protocol';
import type { Bus } from '../lib/bus.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { backoffDelay, RATE_LIMIT_DEFAULT_DELAY_MS, UPLOAD_MAX_DELAY_MS } from '../lib/backoff.js';
import { Waker } from '../lib/waker.js';
import { errorCode } from '../lib/errors.js';
import { CloudError, type CloudClient } from '../cloud/cloud-client.js';
import type { Counters } from '../store/counters.js';
import type { QueueItem, UploadQueue } from '../store/upload-queue.js';

export interface UploadPolicy {
  /** Poll interval while rows wait for a retry. */
  activePollMs: number;
  /** Poll interval when the queue is empty (enqueue wakes the uploader at once anyway). */
  idlePollMs: number;
  /** Give up (dead-letter) after this many failed tries that reached the cloud. */
  maxAttempts: number;
  /** Give up when the first failed try is older than this. */
  maxAgeMs: number;
}

/** How long a stop waits for an upload already in flight. */
export const UPLOAD_STOP_GRACE_MS = 3_000;

export const DEFAULT_UPLOAD_POLICY: UploadPolicy = {
  activePollMs: 5_000,
  idlePollMs: 30_000,
  maxAttempts: 20,
  maxAgeMs: 86_400_000,
};

export interface UploaderOptions {
  camera: string;
  variant: Variant;
  queue: UploadQueue;
  counters: Counters;
  client: CloudClient;
  bus: Bus;
  clock: Clock;
  log: Logger;
  policy: UploadPolicy;
  random?: () => number;
}

export interface UploaderStatus {
  uploaded: number;
  failures: number;
  paused: boolean;
  /** Monotonic time of the last acknowledged upload. */
  lastSuccessAt: number | null;
  lastError: string | null;
  /** Liveness, for the health monitor (monotonic): the pass in progress began at... */
  stepStartedAt: number | null;
  /** ...or, between passes, the next one is due at. */
  nextStepAt: number | null;
}

/**
 * Drains one (camera, variant) queue, oldest first, with its own backoff and crash domain.
 * Originals wait while the same camera has compressed frames ready, so a backlog drains
 * compressed-first and the archival upload never delays the frame the vision model needs.
 */
export class Uploader {
  readonly status: UploaderStatus = {
    uploaded: 0,
    failures: 0,
    paused: false,
    lastSuccessAt: null,
    lastError: null,
    stepStartedAt: null,
    nextStepAt: null,
  };
  readonly #waker: Waker;
  /** Consecutive tries that did not reach the cloud: the whole uploader backs off, not the row. */
  #unreachable = 0;
  #holdUntil = 0;

  constructor(private readonly o: UploaderOptions) {
    this.#waker = new Waker(o.clock);
  }

  get camera(): string {
    return this.o.camera;
  }

  get variant(): Variant {
    return this.o.variant;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { bus, camera, variant } = this.o;
    const onEnqueued = (c: string, v: Variant): void => {
      if (c === camera && v === variant) this.#waker.wake();
    };
    const onDrained = (c: string, v: Variant): void => {
      if (c === camera && v === 'compressed' && variant === 'original') this.#waker.wake();
    };
    const onInvalid = (): void => {
      this.status.paused = true;
    };
    const onRefreshed = (): void => {
      this.status.paused = false;
      this.#waker.wake();
    };
    bus.on('queue:enqueued', onEnqueued);
    bus.on('queue:drained', onDrained);
    bus.on('token:invalidated', onInvalid);
    bus.on('token:refreshed', onRefreshed);
    try {
      while (!signal.aborted) {
        this.status.stepStartedAt = this.o.clock.monotonic();
        this.status.nextStepAt = null;
        const wait = await this.step(signal);
        this.status.stepStartedAt = null;
        this.status.nextStepAt = this.o.clock.monotonic() + wait;
        await this.#waker.wait(wait, signal);
      }
    } finally {
      this.status.stepStartedAt = null;
      this.status.nextStepAt = null;
      bus.off('queue:enqueued', onEnqueued);
      bus.off('queue:drained', onDrained);
      bus.off('token:invalidated', onInvalid);
      bus.off('token:refreshed', onRefreshed);
    }
  }

  /** One pass; returns how long to wait before the next. */
  async step(signal: AbortSignal): Promise<number> {
    const { queue, clock, camera, variant, policy } = this.o;
    if (this.status.paused) return policy.idlePollMs;
    const hold = this.#holdUntil - clock.monotonic();
    if (hold > 0) return hold;
    const now = clock.now();
    if (variant === 'original' && queue.readyCount(camera, 'compressed', now, UPLOAD_MAX_DELAY_MS) > 0) {
      return policy.activePollMs;
    }
    const item = queue.nextReady(camera, variant, now, UPLOAD_MAX_DELAY_MS);
    if (!item) {
      if (variant === 'compressed') this.o.bus.emit('queue:drained', camera, variant);
      const soonest = queue.soonestRetryAt(camera, variant);
      return soonest === undefined ? policy.idlePollMs : Math.min(policy.activePollMs, Math.max(0, soonest - now));
    }
    await this.upload(item, signal);
    return 0;
  }

  private async upload(item: QueueItem, stop: AbortSignal): Promise<void> {
    // A stop lets an upload in flight finish for a short grace, so the cloud and the queue agree
    // on what was stored; one that is stuck is cut when the grace ends.
    const inflight = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const cut = (): void => {
      timer = setTimeout(() => inflight.abort(), UPLOAD_STOP_GRACE_MS);
    };
    if (stop.aborted) cut();
    else stop.addEventListener('abort', cut, { once: true });
    try {
      await this.send(item, inflight.signal);
    } finally {
      stop.removeEventListener('abort', cut);
      clearTimeout(timer);
    }
  }

  private async send(item: QueueItem, signal: AbortSignal): Promise<void> {
    const { client, log } = this.o;
    let data: Buffer;
    try {
      data = await readFile(item.imagePath);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      this.o.queue.remove(item.id);
      this.o.counters.inc('dropped_missing_file');
      log.error({ path: item.imagePath, capturedAt: item.capturedAt }, 'spool file missing; queue row dropped');
      return;
    }
    if (data.length !== item.bytes || createHash('sha256').update(data).digest('hex') !== item.sha256) {
      this.deadLetter(item, 'corrupt_file', `spool file changed on disk (${data.length} of ${item.bytes} bytes)`, true);
      return;
    }
    try {
      const req: PresignRequest = {
        camera: item.camera,
        capturedAt: item.capturedAt,
        variant: item.variant,
        bytes: item.bytes,
        sha256: item.sha256,
        dhash: item.dhash,
      };
      const presign = await client.call<PresignResponse>('POST', '/v1/uploads/presign', req, { signal });
      if (presign.status === 'upload') {
        await client.putObject(presign.url, presign.headers, data, signal);
        await client.call<CompleteResponse>('POST', '/v1/uploads/complete', { uploadId: presign.uploadId }, { signal });
      }
    } catch (err) {
      if (!signal.aborted) this.failed(item, err);
      return;
    }
    this.o.queue.complete(item.id, item.imagePath);
    const gone = await unlink(item.imagePath).then(
      () => true,
      (err: unknown) => errorCode(err) === 'ENOENT',
    );
    // A file that would not go stays noted as done: the next start's reconciliation removes it
    if (gone) this.o.queue.forgetDone(item.imagePath);
    this.#unreachable = 0;
    this.status.uploaded++;
    this.status.lastSuccessAt = this.o.clock.monotonic();
    this.o.counters.inc(`uploaded_${item.variant}`);
    log.debug({ capturedAt: item.capturedAt }, 'uploaded');
  }

  private failed(item: QueueItem, err: unknown): void {
    const { clock, queue, log, policy, bus } = this.o;
    const random = this.o.random ?? Math.random;
    const now = clock.now();
    const message = err instanceof Error ? err.message : String(err);
    this.status.failures++;
    this.status.lastError = message;
    const kind = err instanceof CloudError ? err.kind : 'retry';
    switch (kind) {
      case 'auth':
        this.status.paused = true;
        bus.emit('token:invalidated', message);
        return;
      case 'permanent':
        this.deadLetter(item, `http_${(err as CloudError).status}`, message, true);
        return;
      case 'rate_limited': {
        const delay = (err as CloudError).retryAfterMs ?? RATE_LIMIT_DEFAULT_DELAY_MS;
        this.#holdUntil = clock.monotonic() + delay;
        queue.recordFailure(item.id, { nextRetryAt: now + delay, error: message, now, countAttempt: false });
        log.warn({ delayMs: delay }, 'rate limited by the cloud');
        return;
      }
      case 'retry': {
        if (err instanceof CloudError && !err.reachedCloud) {
          this.#unreachable++;
          const delay = backoffDelay(this.#unreachable, random);
          this.#holdUntil = clock.monotonic() + delay;
          queue.recordFailure(item.id, { nextRetryAt: item.nextRetryAt, error: message, now, countAttempt: false });
          log.warn({ code: err.code, delayMs: delay }, 'cloud unreachable; backing off');
          return;
        }
        const attempts = item.attemptCount + 1;
        const firstFailedAt = item.firstFailedAt ?? now;
        if (attempts >= policy.maxAttempts || now - firstFailedAt >= policy.maxAgeMs) {
          this.deadLetter(item, 'gave_up', message, false);
          return;
        }
        const delay = backoffDelay(attempts, random);
        queue.recordFailure(item.id, { nextRetryAt: now + delay, error: message, now, countAttempt: true });
        log.warn({ attempts, delayMs: delay, err: message }, 'upload failed; will retry');
      }
    }
  }

  private deadLetter(item: QueueItem, reason: string, error: string, keepFile: boolean): void {
    this.o.queue.deadLetter(item.id, reason, error, keepFile, this.o.clock.now());
    if (!keepFile) void unlink(item.imagePath).catch(() => undefined);
    this.o.counters.inc('dead_letters');
    this.o.counters.inc(`dead_letter_${reason}`);
    this.o.log.error({ capturedAt: item.capturedAt, reason, error }, 'upload dead-lettered');
  }
}

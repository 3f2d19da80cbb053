// One detector worker thread and its message protocol: start it and wait until its model is
// loaded, send it one image at a time, notice when it dies. What to do about a slow or dead
// thread (time limits, restarts, the queue) is object-detector.ts's business.

import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { DetectorError } from './detector-error.js';
import type { Detection } from './object-detector.js';
import type { DetectRequest, WorkerReply, WorkerSetup } from './worker-protocol.js';

export interface ThreadResult {
  detections: Detection[];
  width: number;
  height: number;
  /** Time spent in the worker. */
  ms: number;
}

interface InFlight {
  id: number;
  resolve(r: ThreadResult): void;
  reject(err: DetectorError): void;
}

export class DetectorThread {
  /** Model load plus warm-up, in the worker. */
  readonly loadMs: number;
  /** The tfjs backend the worker runs on ('wasm'). */
  readonly backend: string;
  readonly #worker: Worker;
  readonly #logger: Logger;
  #alive = true;
  #terminated = false;
  #lastError: Error | null = null;
  #nextId = 1;
  #inFlight: InFlight | null = null;

  /**
   * Starts a worker from `url` and resolves once it is ready to detect. Rejects with
   * DETECTOR_FAILED (the worker is gone by then) if the model does not load, the worker dies,
   * or it is not ready within `startTimeoutMs`.
   */
  static start(url: URL, setup: WorkerSetup, o: { logger: Logger; startTimeoutMs: number }): Promise<DetectorThread> {
    let worker: Worker;
    try {
      worker = new Worker(url, { workerData: setup, name: 'object-detector' });
    } catch (err) {
      return Promise.reject(new DetectorError('DETECTOR_FAILED', `the detector worker did not start: ${(err as Error).message}`, { cause: err }));
    }
    return new Promise((resolve, reject) => {
      let lastError: Error | null = null;
      const timer = setTimeout(() => fail(new DetectorError('DETECTOR_FAILED', `the detector was not ready within ${o.startTimeoutMs} ms`)), o.startTimeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      };
      const fail = (err: DetectorError): void => {
        done();
        void worker.terminate();
        reject(err);
      };
      const onMessage = (m: WorkerReply): void => {
        if (m.type === 'log') {
          logWorkerOutput(o.logger, m.text);
        } else if (m.type === 'ready') {
          done();
          resolve(new DetectorThread(worker, m, o.logger));
        } else if (m.type === 'load-failed') {
          fail(new DetectorError('DETECTOR_FAILED', `the detector could not load its model: ${m.message}`));
        }
      };
      const onError = (err: Error): void => {
        lastError = err;
      };
      const onExit = (code: number): void => {
        const why = lastError ? `: ${lastError.message}` : '';
        fail(new DetectorError('DETECTOR_FAILED', `the detector's worker exited (code ${code}) before it was ready${why}`, { cause: lastError ?? undefined }));
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  private constructor(worker: Worker, ready: Extract<WorkerReply, { type: 'ready' }>, logger: Logger) {
    this.#worker = worker;
    this.#logger = logger;
    this.loadMs = ready.loadMs;
    this.backend = ready.backend;
    worker.on('message', (m: WorkerReply) => this.#onReply(m));
    worker.on('error', (err) => {
      this.#lastError = err;
    });
    worker.on('exit', (code) => this.#onExit(code));
    // An idle detector does not keep the process alive; one at work does (see detect()).
    worker.unref();
  }

  /** False once the worker has exited or been terminated. */
  get alive(): boolean {
    return this.#alive;
  }

  /**
   * Detects objects in one JPEG; one call at a time. Rejects with DETECTOR_BAD_IMAGE (the
   * worker carries on) or DETECTOR_FAILED (if the worker died, `alive` is now false).
   */
  detect(jpeg: Uint8Array): Promise<ThreadResult> {
    if (!this.#alive) return Promise.reject(new DetectorError('DETECTOR_FAILED', 'the detector worker is not running'));
    if (this.#inFlight) return Promise.reject(new Error('DetectorThread.detect: one call at a time'));
    const id = this.#nextId++;
    // A copy, transferred: the caller's buffer stays usable and is not copied twice.
    const copy = new Uint8Array(jpeg);
    return new Promise<ThreadResult>((resolve, reject) => {
      this.#inFlight = { id, resolve, reject };
      this.#worker.ref();
      const req: DetectRequest = { type: 'detect', id, jpeg: copy };
      this.#worker.postMessage(req, [copy.buffer]);
    });
  }

  /** Ends the worker, at once (a detection under way is abandoned and rejects). */
  async terminate(): Promise<void> {
    this.#alive = false;
    this.#terminated = true;
    await this.#worker.terminate();
  }

  #onReply(m: WorkerReply): void {
    if (m.type === 'log') return logWorkerOutput(this.#logger, m.text);
    const call = this.#inFlight;
    if (!call || (m.type !== 'result' && m.type !== 'error') || m.id !== call.id) {
      this.#logger.warn({ reply: m.type }, 'unexpected message from the detector worker');
      return;
    }
    this.#settled();
    if (m.type === 'result') call.resolve({ detections: m.detections, width: m.width, height: m.height, ms: m.ms });
    else call.reject(new DetectorError(m.code, m.message));
  }

  #onExit(code: number): void {
    this.#alive = false;
    const call = this.#inFlight;
    if (!call) {
      if (!this.#terminated) this.#logger.warn({ code, err: this.#lastError }, 'the detector worker exited while idle');
      return;
    }
    this.#settled();
    const why = this.#lastError ? `: ${this.#lastError.message}` : '';
    call.reject(new DetectorError('DETECTOR_FAILED', `the detector worker exited (code ${code}) during a detection${why}`, { cause: this.#lastError ?? undefined }));
  }

  #settled(): void {
    this.#inFlight = null;
    this.#worker.unref();
  }
}

function logWorkerOutput(logger: Logger, text: string): void {
  if (text.trim()) logger.warn({ output: text }, 'detector worker output');
}

import { DetectorError, type Detection, type ObjectDetector } from './object-detector.js';

/**
 * Starts the real detector on first use, not when the cloud starts: loading the model costs
 * about a second and tens of MB, which a cloud that never gets a frame (a test, the CLI, a
 * replica that only serves the dashboard) should not pay. A failed start is retried on the
 * next call rather than remembered.
 */
export class LazyDetector implements ObjectDetector {
  readonly #start: () => Promise<ObjectDetector>;
  #detector: Promise<ObjectDetector> | undefined;
  #closed = false;

  constructor(start: () => Promise<ObjectDetector>) {
    this.#start = start;
  }

  async detect(jpeg: Buffer, signal?: AbortSignal): Promise<Detection[]> {
    return (await this.#get()).detect(jpeg, signal);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const d = this.#detector;
    this.#detector = undefined;
    if (d) await (await d.catch(() => undefined))?.close();
  }

  #get(): Promise<ObjectDetector> {
    if (this.#closed) return Promise.reject(new DetectorError('DETECTOR_CLOSED', 'the detector is closed'));
    this.#detector ??= this.#start().catch((err: unknown) => {
      this.#detector = undefined;
      throw err;
    });
    return this.#detector;
  }
}

// The messages between the detector's owner (detector-thread.ts) and its worker thread
// (detector-worker.ts). Types only: the worker imports this with `import type`, which leaves
// no import behind, so the worker file stays loadable on its own (see detector-worker.ts).

import type { Detection } from './object-detector.js';

/** Given to the worker at start (workerData). */
export interface WorkerSetup {
  /** Detections scoring below this are dropped by the model's own filter. */
  minScore: number;
  /** At most this many detections per image (the model keeps the best). */
  maxDetected: number;
  /** Images are scaled down so their long side is at most this before detection. */
  maxSidePx: number;
}

export interface DetectRequest {
  type: 'detect';
  id: number;
  /** The JPEG's bytes; transferred, so the owner sends a copy. */
  jpeg: Uint8Array;
}

export type WorkerReply =
  /** The model is loaded and warmed up; detections may be sent. */
  | { type: 'ready'; loadMs: number; backend: string }
  /** The model could not be loaded; the worker ends after sending this. */
  | { type: 'load-failed'; message: string }
  | {
      type: 'result';
      id: number;
      detections: Detection[];
      /** The image's own size, which the boxes refer to. */
      width: number;
      height: number;
      /** Time spent in the worker: decode, scale, detect. */
      ms: number;
    }
  /** A line the model library printed to the console, for the owner's log. */
  | { type: 'log'; text: string }
  /** This image failed; the worker carries on with the next. */
  | { type: 'error'; id: number; code: 'DETECTOR_BAD_IMAGE' | 'DETECTOR_FAILED'; message: string };

// What the capture side hands over. Capture never imports the upload side: main.ts wires a
// CaptureSink (the outbox) into each CameraWorker, and the queue stands between them.

export interface CaptureFiles {
  /** Full resolution, JPEG q2. */
  original: string;
  /** Longest edge <= 1024 px, JPEG q18. */
  compressed: string;
}

export interface Capture {
  /** Camera id from the agent's config. */
  camera: string;
  /** Wall-clock time the capture started, epoch ms. */
  capturedAt: number;
  /** dHash (hex) of the 65×64 grayscale thumbnail; see @vigil/protocol. */
  dhash: string;
  /** Temporary files in the capture work dir; the sink moves them into the spool. */
  files: CaptureFiles;
}

/** Takes ownership of the files; resolves once the capture is durable (spooled + queued). */
export type CaptureSink = (capture: Capture) => Promise<void>;

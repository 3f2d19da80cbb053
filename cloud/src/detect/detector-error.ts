// Every way a detection can fail, as a stable code with a retryable flag (object-detector.test.ts
// pins the table). Callers branch on the code: a bad image is never worth another try, a
// timeout or a crashed worker is (the detector restarts its worker by itself).

export const DETECTOR_ERRORS = {
  /** The bytes are not a JPEG that decodes (truncated, corrupt, another format). */
  DETECTOR_BAD_IMAGE: { retryable: false },
  /** No answer within the time limit; the worker was restarted. */
  DETECTOR_TIMEOUT: { retryable: true },
  /** The worker crashed, could not load the model, or the model failed on this image. */
  DETECTOR_FAILED: { retryable: true },
  /** Too many detections are already waiting. */
  DETECTOR_BUSY: { retryable: true },
  /** The caller's signal aborted the call. */
  DETECTOR_ABORTED: { retryable: false },
  /** close() was called. */
  DETECTOR_CLOSED: { retryable: false },
} as const;
export type DetectorErrorCode = keyof typeof DETECTOR_ERRORS;

export class DetectorError extends Error {
  readonly code: DetectorErrorCode;
  readonly retryable: boolean;

  constructor(code: DetectorErrorCode, message: string, o: { cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'DetectorError';
    this.code = code;
    this.retryable = DETECTOR_ERRORS[code].retryable;
  }
}

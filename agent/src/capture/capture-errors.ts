// The stable codes a capture fails with, whether the next tick should expect better luck, and
// how secrets are kept out of messages (camera passwords travel inside RTSP URLs).
import { VigilError } from '../lib/errors.js';

/**
 * code → retryable. "Retryable" means the condition can clear by itself, so the worker's
 * next tick is worth trying; every code is counted and reported either way.
 */
export const CAPTURE_ERROR_RETRYABLE = {
  /** No frame within the wall-clock timeout; ffmpeg was SIGKILLed. */
  CAPTURE_TIMEOUT: true,
  /** ffmpeg exited non-zero (unreachable camera, 401, refused, its own -timeout, ...). */
  CAPTURE_FAILED: true,
  /** ffmpeg exited 0 but wrote no (or empty) output: the stream ended or dropped. */
  CAPTURE_NO_FRAME: true,
  /** An output is not a complete JPEG, or the thumbnail has the wrong size. */
  CAPTURE_CORRUPT: true,
  /** The disk is full; the spool's eviction may free space before the next tick. */
  DISK_FULL: true,
  /** Stopped on purpose (AbortSignal): not a camera problem, do not retry. */
  CAPTURE_ABORTED: false,
} as const satisfies Record<string, boolean>;

export type CaptureErrorCode = keyof typeof CAPTURE_ERROR_RETRYABLE;

export function captureError(code: CaptureErrorCode, message: string, cause?: unknown): VigilError {
  return new VigilError(code, message, { retryable: CAPTURE_ERROR_RETRYABLE[code], cause });
}

/** `scheme://user:pass@host` → `scheme://***@host`, anywhere in `text`. */
export function redactUrlCredentials(text: string): string {
  // Greedy up to the last '@' before the path, so an unencoded '@' in a password is covered.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/]+@/gi, '$1***@');
}

/** Removes URL credentials and every listed secret (raw and percent-encoded) from `text`. */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = redactUrlCredentials(text);
  for (const s of secrets) {
    if (!s) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('***');
  }
  return out;
}

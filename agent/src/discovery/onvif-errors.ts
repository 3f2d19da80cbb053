// Errors from talking to one camera, with stable codes. `retryable` says whether trying the
// same thing again soon may succeed; a permanent error waits for something to change (the
// credentials, the camera's firmware) and is retried only on discovery's slow backoff.
// Table-tested in onvif-errors.test.ts.
import { VigilError } from '../lib/errors.js';

export const ONVIF_ERROR_CODES = {
  /** The camera rejected our credentials (digest and, if allowed, text), after re-measuring its clock. */
  ONVIF_AUTH_FAILED: false,
  /** The camera wants credentials and none are configured for it. */
  ONVIF_NO_CREDENTIALS: false,
  /** No answer within the call's timeout. */
  ONVIF_TIMEOUT: true,
  /** Connection refused, reset, no route. */
  ONVIF_UNREACHABLE: true,
  /** An answer that is not the SOAP we asked for (HTML, truncated, missing elements). */
  ONVIF_BAD_RESPONSE: false,
  /** A SOAP fault other than an authentication one (ActionNotSupported, ...). */
  ONVIF_FAULT: false,
  /** An HTTP error status without a SOAP fault: 5xx may pass, 4xx will not. */
  ONVIF_HTTP_5XX: true,
  ONVIF_HTTP_4XX: false,
  /** The camera has no media profile, or no stream and no snapshot URI for it. */
  ONVIF_NO_MEDIA: false,
  /** Our own stop signal ended the call. */
  ONVIF_ABORTED: true,
} as const satisfies Record<string, boolean>;

export type OnvifErrorCode = keyof typeof ONVIF_ERROR_CODES;

export class OnvifError extends VigilError {
  declare readonly code: OnvifErrorCode;

  constructor(code: OnvifErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, { retryable: ONVIF_ERROR_CODES[code], ...opts });
    this.name = 'OnvifError';
  }
}

export function isOnvifError(err: unknown, code?: OnvifErrorCode): err is OnvifError {
  return err instanceof OnvifError && (code === undefined || err.code === code);
}

/** Node's socket error codes that mean "nobody there" rather than "too slow". */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ABORT_ERR_TIMEOUT']);

/** Maps a transport error (undici, node:net) to our code. */
export function transportErrorCode(err: unknown): 'ONVIF_TIMEOUT' | 'ONVIF_UNREACHABLE' | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError' || (typeof code === 'string' && TIMEOUT.has(code))) return 'ONVIF_TIMEOUT';
    if (typeof code === 'string' && UNREACHABLE.has(code)) return 'ONVIF_UNREACHABLE';
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

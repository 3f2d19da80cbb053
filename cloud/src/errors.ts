// Errors carry a stable `code`; the HTTP status follows from the code through one table
// (ERROR_STATUS), which a table test pins. Code branches on codes, never on messages.

import type { ErrorBody } from '@vigil/protocol';
import { STATUS_CODES } from 'node:http';

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  PASSWORD_REJECTED: 400,
  CHECKSUM_MISMATCH: 400,
  TOKEN_INVALID: 401,
  ADMIN_TOKEN_INVALID: 401,
  LOGIN_FAILED: 401,
  SESSION_REQUIRED: 401,
  CLAIM_CODE_UNKNOWN: 403,
  SIGNATURE_INVALID: 403,
  URL_EXPIRED: 403,
  CROSS_SITE_REFUSED: 403,
  NOT_FOUND: 404,
  UPLOAD_NOT_FOUND: 404,
  CAMERA_NOT_FOUND: 404,
  FRAME_NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  ALERT_NOT_FOUND: 404,
  RELEASE_NOT_FOUND: 404,
  DEPLOYMENT_NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  EVENT_NOT_FOUND: 404,
  SITE_NOT_FOUND: 404,
  OBJECT_MISSING: 409,
  VERSION_EXISTS: 409,
  CLAIM_DEVICE_OTHER_SITE: 409,
  USER_EXISTS: 409,
  CLAIM_CODE_USED: 410,
  CLAIM_CODE_EXPIRED: 410,
  OBJECT_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_JPEG: 415,
  OBJECT_MISMATCH: 422,
  TRUNCATED_JPEG: 422,
  BUNDLE_SIGNATURE_INVALID: 422,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  LOGIN_LOCKED: 429,
  INTERNAL: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class CloudError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CloudError';
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** Configuration problems (env, flags): the message names the option. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

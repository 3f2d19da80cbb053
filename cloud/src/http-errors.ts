import type { ErrorBody } from '@vigil/protocol';
import { CloudError, errorBody } from './errors.js';

// Turns anything a route or Fastify throws into the one ErrorBody shape. Fastify's own
// errors get a code of ours, so clients branch on one vocabulary.

interface FastifyishError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: unknown;
}

const FASTIFY_CODES: Record<string, { code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'BAD_REQUEST', message: 'the request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'BAD_REQUEST', message: 'the request body is empty; a JSON object was expected' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BAD_REQUEST' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'unsupported content-type for this route' },
  FST_ERR_VALIDATION: { code: 'BAD_REQUEST' },
};

export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof CloudError) return errorBody(err.statusCode, err.code, err.message);
  const e = (err ?? {}) as FastifyishError;
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  const message = typeof e.message === 'string' ? e.message : 'unknown error';
  if (e.validation !== undefined) return errorBody(400, 'BAD_REQUEST', message);
  const known = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (known) return errorBody(status, known.code, known.message ?? message);
  if (status >= 500) return errorBody(500, 'INTERNAL', 'internal error');
  return errorBody(status, status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', message);
}

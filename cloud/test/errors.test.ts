import t from 'tap';
import { CloudError, ERROR_STATUS, errorBody, isErrorCode } from '../src/errors.js';
import { toErrorBody } from '../src/http-errors.js';

// The codes clients branch on, and what each means on the wire. Changing a row here changes
// how the agent treats the answer (retry, re-presign, pause for a token, dead-letter).
const TABLE: [string, number][] = [
  ['BAD_REQUEST', 400],
  ['CHECKSUM_MISMATCH', 400],
  ['TOKEN_INVALID', 401],
  ['ADMIN_TOKEN_INVALID', 401],
  ['CLAIM_CODE_UNKNOWN', 403],
  ['SIGNATURE_INVALID', 403],
  ['URL_EXPIRED', 403],
  ['NOT_FOUND', 404],
  ['UPLOAD_NOT_FOUND', 404],
  ['CAMERA_NOT_FOUND', 404],
  ['FRAME_NOT_FOUND', 404],
  ['DEVICE_NOT_FOUND', 404],
  ['ALERT_NOT_FOUND', 404],
  ['EVENT_NOT_FOUND', 404],
  ['SITE_NOT_FOUND', 404],
  ['PASSWORD_REJECTED', 400],
  ['LOGIN_FAILED', 401],
  ['SESSION_REQUIRED', 401],
  ['CROSS_SITE_REFUSED', 403],
  ['USER_NOT_FOUND', 404],
  ['USER_EXISTS', 409],
  ['LOGIN_LOCKED', 429],
  ['RELEASE_NOT_FOUND', 404],
  ['DEPLOYMENT_NOT_FOUND', 404],
  ['OBJECT_MISSING', 409],
  ['VERSION_EXISTS', 409],
  ['CLAIM_DEVICE_OTHER_SITE', 409],
  ['CLAIM_CODE_USED', 410],
  ['CLAIM_CODE_EXPIRED', 410],
  ['OBJECT_TOO_LARGE', 413],
  ['BODY_TOO_LARGE', 413],
  ['UNSUPPORTED_MEDIA_TYPE', 415],
  ['NOT_JPEG', 415],
  ['OBJECT_MISMATCH', 422],
  ['TRUNCATED_JPEG', 422],
  ['BUNDLE_SIGNATURE_INVALID', 422],
  ['RANGE_NOT_SATISFIABLE', 416],
  ['RATE_LIMITED', 429],
  ['INTERNAL', 500],
];

t.test('every error code has its status', async (t) => {
  t.same(Object.keys(ERROR_STATUS).sort(), TABLE.map(([c]) => c).sort(), 'the table covers every code');
  for (const [code, status] of TABLE) {
    t.ok(isErrorCode(code));
    const err = new CloudError(code as keyof typeof ERROR_STATUS, 'm');
    t.equal(err.statusCode, status, code);
    t.same(toErrorBody(err), errorBody(status, code, 'm'));
  }
  t.notOk(isErrorCode('toString'), 'prototype names are not codes');
});

t.test("Fastify's own errors get codes of ours", async (t) => {
  const cases: [string, unknown, number, string][] = [
    ['invalid JSON', { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400, message: 'x' }, 400, 'BAD_REQUEST'],
    ['validation', { code: 'FST_ERR_VALIDATION', statusCode: 400, validation: [], message: 'body/x must be string' }, 400, 'BAD_REQUEST'],
    ['body too large', { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413, message: 'x' }, 413, 'BODY_TOO_LARGE'],
    ['media type', { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415, message: 'x' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['plain Error', new Error('secret detail'), 500, 'INTERNAL'],
    ['thrown string', 'boom', 500, 'INTERNAL'],
    ['other 4xx', { statusCode: 405, message: 'nope' }, 405, 'BAD_REQUEST'],
  ];
  for (const [name, err, status, code] of cases) {
    const body = toErrorBody(err);
    t.equal(body.statusCode, status, name);
    t.equal(body.code, code, name);
    t.type(body.error, 'string');
  }
  t.equal(toErrorBody(new Error('secret detail')).message, 'internal error', 'internals are not leaked');
});

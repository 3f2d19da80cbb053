import t from 'tap';
import { backoffDelay, parseRetryAfter, UPLOAD_MAX_DELAY_MS } from '../src/lib/backoff.js';
import { classifyStatus, type FailureKind } from '../src/cloud/classify.js';

t.test('backoff ladder without jitter: 30 s, 60 s, 2 min, 5 min, 10 min, then the 30 min cap', async (t) => {
  const mid = () => 0.5;
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelay(a, mid)),
    [30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 1_800_000, 1_800_000],
  );
});

t.test('jitter stays within ±20 % and never passes the cap by more', async (t) => {
  t.equal(backoffDelay(1, () => 0), 24_000);
  t.equal(backoffDelay(1, () => 0.999999), 36_000);
  t.ok(backoffDelay(9, () => 0.999999) <= UPLOAD_MAX_DELAY_MS * 1.2);
});

t.test('Retry-After: seconds, HTTP date, garbage', async (t) => {
  const now = Date.UTC(2026, 10, 23, 12, 0, 0);
  t.equal(parseRetryAfter('7', now), 7000);
  t.equal(parseRetryAfter(new Date(now + 90_000).toUTCString(), now), 90_000);
  t.equal(parseRetryAfter(new Date(now - 90_000).toUTCString(), now), 0);
  t.equal(parseRetryAfter('soon', now), undefined);
  t.equal(parseRetryAfter(undefined, now), undefined);
});

t.test('classification table (DESIGN.md "Uploading")', async (t) => {
  const table: [number, 'api' | 'object', FailureKind][] = [
    [500, 'api', 'retry'],
    [502, 'object', 'retry'],
    [503, 'api', 'retry'],
    [408, 'api', 'retry'],
    [409, 'api', 'retry'],
    [404, 'api', 'retry'],
    [429, 'api', 'rate_limited'],
    [429, 'object', 'rate_limited'],
    [401, 'api', 'auth'],
    [403, 'api', 'auth'],
    [403, 'object', 'retry'],
    [401, 'object', 'retry'],
    [400, 'api', 'permanent'],
    [413, 'object', 'permanent'],
    [415, 'object', 'permanent'],
    [422, 'api', 'permanent'],
  ];
  for (const [status, step, want] of table) t.equal(classifyStatus(status, step), want, `${status} ${step}`);
});

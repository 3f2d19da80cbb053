import t from 'tap';
import { backoffDelay, NOTIFY_MAX_DELAY_MS, NOTIFY_MAX_RETRY_AFTER_MS, parseRetryAfter } from '../src/lib/backoff.js';
import { classifyWebhookStatus, signBody, WEBHOOK_ERRORS, WebhookError } from '../src/notify/webhook-sender.js';
import { CHAT_ERRORS, ChatError, classifyChatStatus } from '../src/llm/chat-client.js';

// The retry policy and the error codes, as tables: changing a row changes what is retried.

t.test('webhook status → outcome', async (t) => {
  const table: [number, string | null][] = [
    [200, null],
    [204, null],
    [301, 'WEBHOOK_REJECTED'],
    [400, 'WEBHOOK_REJECTED'],
    [401, 'WEBHOOK_REJECTED'],
    [404, 'WEBHOOK_REJECTED'],
    [408, 'WEBHOOK_SERVER_ERROR'],
    [410, 'WEBHOOK_REJECTED'],
    [422, 'WEBHOOK_REJECTED'],
    [429, 'WEBHOOK_RATE_LIMITED'],
    [500, 'WEBHOOK_SERVER_ERROR'],
    [502, 'WEBHOOK_SERVER_ERROR'],
    [503, 'WEBHOOK_SERVER_ERROR'],
  ];
  for (const [status, code] of table) t.equal(classifyWebhookStatus(status), code, String(status));
});

t.test('webhook error codes: retryable or permanent', async (t) => {
  t.same(
    Object.fromEntries(Object.entries(WEBHOOK_ERRORS).map(([c, v]) => [c, v.retryable])),
    { WEBHOOK_UNREACHABLE: true, WEBHOOK_TIMEOUT: true, WEBHOOK_SERVER_ERROR: true, WEBHOOK_RATE_LIMITED: true, WEBHOOK_REJECTED: false },
  );
  t.equal(new WebhookError('WEBHOOK_REJECTED', 'x').retryable, false);
});

t.test('chat status → code; chat codes: retryable or permanent', async (t) => {
  const table: [number, string][] = [
    [400, 'LLM_REJECTED'],
    [401, 'LLM_AUTH'],
    [403, 'LLM_AUTH'],
    [404, 'LLM_REJECTED'],
    [408, 'LLM_SERVER_ERROR'],
    [413, 'LLM_REJECTED'],
    [429, 'LLM_RATE_LIMITED'],
    [500, 'LLM_SERVER_ERROR'],
    [503, 'LLM_SERVER_ERROR'],
  ];
  for (const [status, code] of table) t.equal(classifyChatStatus(status), code, String(status));
  t.same(
    Object.fromEntries(Object.entries(CHAT_ERRORS).map(([c, v]) => [c, v.retryable])),
    {
      LLM_UNREACHABLE: true,
      LLM_TIMEOUT: true,
      LLM_RATE_LIMITED: true,
      LLM_SERVER_ERROR: true,
      LLM_AUTH: false,
      LLM_REJECTED: false,
      LLM_BAD_RESPONSE: false,
      LLM_ABORTED: false,
    },
  );
  t.equal(new ChatError('LLM_TIMEOUT', 'x').retryable, true);
});

t.test('backoff ladder with cap and jitter', async (t) => {
  const mid = () => 0.5;
  t.same([1, 2, 3, 4, 5, 6, 7, 20].map((a) => backoffDelay(a, mid)), [10_000, 30_000, 60_000, 120_000, 300_000, 600_000, NOTIFY_MAX_DELAY_MS, NOTIFY_MAX_DELAY_MS]);
  t.equal(backoffDelay(1, () => 0), 8_000, '-20 %');
  t.equal(backoffDelay(1, () => 0.999_999), 12_000, '+20 %');
});

t.test('Retry-After: seconds or a date, capped', async (t) => {
  const now = Date.UTC(2025, 0, 1);
  t.equal(parseRetryAfter('120', now), 120_000);
  t.equal(parseRetryAfter(['5'], now), 5_000);
  t.equal(parseRetryAfter(new Date(now + 30_000).toUTCString(), now), 30_000);
  t.equal(parseRetryAfter(new Date(now - 30_000).toUTCString(), now), 0, 'a date in the past: now');
  t.equal(parseRetryAfter('999999', now), NOTIFY_MAX_RETRY_AFTER_MS);
  t.equal(parseRetryAfter('soon', now), undefined);
  t.equal(parseRetryAfter(undefined, now), undefined);
});

t.test('the signature is HMAC-SHA256 of the body, hex', async (t) => {
  // Reference from another implementation: printf '{"a":1}' | openssl dgst -sha256 -hmac key
  t.equal(signBody('key', '{"a":1}'), '88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342');
  t.equal(signBody('key', Buffer.from('{"a":1}')), signBody('key', '{"a":1}'));
});

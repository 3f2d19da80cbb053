import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import { parseRetryAfter } from '../lib/backoff.js';

// One POST of one notification to one webhook, and what its outcome means. The classifier is
// the only place that decides retry vs. give up; webhook-sender.test.ts pins it as a table.

export const SIGNATURE_HEADER = 'x-vigil-signature';
export const EVENT_HEADER = 'x-vigil-event';
export const DELIVERY_HEADER = 'x-vigil-delivery';
/** The same value as the delivery header, under the name many receivers dedupe on. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
const CONNECT_TIMEOUT_MS = 5_000;

/** Stable codes of a failed delivery, and whether another attempt may succeed. */
export const WEBHOOK_ERRORS = {
  /** No connection (refused, reset, DNS). */
  WEBHOOK_UNREACHABLE: { retryable: true },
  /** No complete answer within the timeout. */
  WEBHOOK_TIMEOUT: { retryable: true },
  /** 5xx or 408: the receiver's trouble, probably passing. */
  WEBHOOK_SERVER_ERROR: { retryable: true },
  /** 429: wait (Retry-After when given) and try again. */
  WEBHOOK_RATE_LIMITED: { retryable: true },
  /** Any other non-2xx (4xx, or a redirect, which is not followed): retrying will not help. */
  WEBHOOK_REJECTED: { retryable: false },
} as const;
export type WebhookErrorCode = keyof typeof WEBHOOK_ERRORS;

export class WebhookError extends Error {
  readonly code: WebhookErrorCode;
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: WebhookErrorCode, message: string, o: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'WebhookError';
    this.code = code;
    this.retryable = WEBHOOK_ERRORS[code].retryable;
    this.status = o.status;
    this.retryAfterMs = o.retryAfterMs;
  }
}

/** What an HTTP status from a webhook means: null = delivered, else the error code. */
export function classifyWebhookStatus(status: number): WebhookErrorCode | null {
  if (status >= 200 && status < 300) return null;
  if (status === 429) return 'WEBHOOK_RATE_LIMITED';
  if (status === 408 || status >= 500) return 'WEBHOOK_SERVER_ERROR';
  return 'WEBHOOK_REJECTED';
}

/** HMAC-SHA256 of the exact body bytes, hex: the value of X-Vigil-Signature after "sha256=". */
export function signBody(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export interface WebhookMessage {
  target: string;
  id: string;
  event: string;
  body: string;
}

export class WebhookSender {
  readonly #agent = new Agent({ connect: { timeout: CONNECT_TIMEOUT_MS }, keepAliveTimeout: 10_000 });
  readonly #secret: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;

  constructor(o: { secret: string; timeoutMs: number; now: () => number }) {
    this.#secret = o.secret;
    this.#timeoutMs = o.timeoutMs;
    this.#now = o.now;
  }

  /**
   * Resolves when the receiver accepted (2xx); throws WebhookError otherwise. When `signal`
   * aborts (the cloud is stopping) it throws signal.reason, which is no verdict on the webhook.
   */
  async send(m: WebhookMessage, signal: AbortSignal): Promise<number> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let status: number;
    let retryAfter: string | string[] | undefined;
    try {
      const res = await request(m.target, {
        method: 'POST',
        dispatcher: this.#agent,
        signal: AbortSignal.any([signal, timeout]),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'vigil-cloud',
          [SIGNATURE_HEADER]: `sha256=${signBody(this.#secret, m.body)}`,
          [EVENT_HEADER]: m.event,
          [DELIVERY_HEADER]: m.id,
          [IDEMPOTENCY_HEADER]: m.id,
        },
        body: m.body,
      });
      status = res.statusCode;
      retryAfter = res.headers['retry-after'];
      // The answer's body means nothing to us, but must be read for the connection to be reused.
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const e = err as { code?: string; name?: string; message?: string };
      if (timeout.aborted || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') {
        throw new WebhookError('WEBHOOK_TIMEOUT', `no answer within ${this.#timeoutMs} ms`, { cause: err });
      }
      throw new WebhookError('WEBHOOK_UNREACHABLE', `${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, { cause: err });
    }
    const code = classifyWebhookStatus(status);
    if (code === null) return status;
    const retryAfterMs = code === 'WEBHOOK_RATE_LIMITED' || code === 'WEBHOOK_SERVER_ERROR' ? parseRetryAfter(retryAfter, this.#now()) : undefined;
    throw new WebhookError(code, `HTTP ${status}`, { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

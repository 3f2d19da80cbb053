import type { Logger } from 'pino';
import { backoffDelay } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { Waker } from '../lib/waker.js';
import type { AlertStore, DeliveryOutcome, NotificationRecord } from '../store/alert-types.js';
import { WebhookError, type WebhookSender } from './webhook-sender.js';

/** Rows taken per round; delivered concurrently, so one slow receiver delays a round, not the queue. */
export const DELIVERY_BATCH = 8;
/** With nothing due, look again this often anyway (another process may have enqueued). */
export const DISPATCH_IDLE_MS = 60_000;
/** After a round failed (the database, not a webhook), wait this long before the next. */
export const DISPATCH_ERROR_PAUSE_MS = 5_000;

export interface DispatcherOptions {
  store: AlertStore;
  sender: WebhookSender;
  /** Webhooks configured now; a row for another target (removed from the config) is failed. */
  targets: readonly string[];
  maxAttempts: number;
  /** How long a claimed row is leased: longer than one delivery can take. */
  leaseMs: number;
  clock: Clock;
  random: () => number;
  logger: Logger;
}

export interface DispatcherStatus {
  lastRunAt: number | null;
  /** When a round last completed without a database error (failed webhooks do not count). */
  lastOkAt: number | null;
  lastError: string | null;
}

/**
 * Delivers notifications from the database: due rows are leased, sent, and then marked
 * delivered, rescheduled with backoff (network error, timeout, 5xx, 408, 429 with its
 * Retry-After), or failed (a permanent answer, or maxAttempts reached). Rows live in the
 * database, so a restart carries on where the last process stopped.
 */
export class NotificationDispatcher {
  readonly #o: DispatcherOptions;
  readonly #waker: Waker;
  readonly #status: DispatcherStatus = { lastRunAt: null, lastOkAt: null, lastError: null };

  constructor(o: DispatcherOptions) {
    this.#o = o;
    this.#waker = new Waker(o.clock.sleep);
  }

  /** Something was enqueued: deliver now rather than at the next scheduled look. */
  wake(): void {
    this.#waker.wake();
  }

  status(): DispatcherStatus {
    return { ...this.#status };
  }

  /** Delivers every due row (round after round); resolves with how many attempts were made. */
  async deliverDue(signal: AbortSignal = new AbortController().signal): Promise<number> {
    let attempts = 0;
    while (!signal.aborted) {
      const now = this.#o.clock.now();
      const rows = await this.#o.store.claimDueNotifications(now, DELIVERY_BATCH, now + this.#o.leaseMs);
      if (rows.length === 0) break;
      await Promise.all(rows.map((r) => this.#deliver(r, signal)));
      attempts += rows.length;
    }
    return attempts;
  }

  /** The delivery loop; returns when `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let wait = DISPATCH_IDLE_MS;
      this.#status.lastRunAt = this.#o.clock.now();
      try {
        await this.deliverDue(signal);
        const next = await this.#o.store.nextNotificationAt();
        if (next !== null) wait = Math.max(0, Math.min(DISPATCH_IDLE_MS, next - this.#o.clock.now()));
        this.#status.lastOkAt = this.#o.clock.now();
        this.#status.lastError = null;
      } catch (err) {
        if (signal.aborted) break;
        this.#status.lastError = (err as Error).message;
        this.#o.logger.error({ err }, 'notification delivery round failed');
        wait = DISPATCH_ERROR_PAUSE_MS;
      }
      await this.#waker.wait(wait, signal);
    }
  }

  async #deliver(row: NotificationRecord, signal: AbortSignal): Promise<void> {
    const log = this.#o.logger.child({ notificationId: row.id, alertId: row.alertId, event: row.event });
    let outcome: DeliveryOutcome;
    if (!this.#o.targets.includes(row.target)) {
      outcome = { state: 'failed', at: this.#o.clock.now(), error: 'WEBHOOK_NOT_CONFIGURED: the target is no longer configured' };
    } else {
      try {
        await this.#o.sender.send({ target: row.target, id: row.id, event: row.event, body: row.payload }, signal);
        outcome = { state: 'delivered', at: this.#o.clock.now() };
      } catch (err) {
        // Stopped before an answer came: the lease runs out and the row is sent again after
        // the restart. An answer that did come is recorded, stopping or not.
        if (signal.aborted && !(err instanceof WebhookError)) return;
        outcome = this.#afterFailure(row, err);
      }
    }
    await this.#o.store.recordDelivery(row.id, outcome);
    if (outcome.state === 'delivered') log.debug('notification delivered');
    else if (outcome.state === 'failed') log.warn({ attempts: row.attempts + 1, error: outcome.error }, 'notification failed; giving up');
    else log.info({ attempts: row.attempts + 1, error: outcome.error, nextAttemptAt: outcome.nextAttemptAt }, 'notification delivery failed; will retry');
  }

  #afterFailure(row: NotificationRecord, err: unknown): DeliveryOutcome {
    const now = this.#o.clock.now();
    const e = err instanceof WebhookError ? err : new WebhookError('WEBHOOK_UNREACHABLE', (err as Error).message ?? String(err));
    const error = `${e.code}: ${e.message}`;
    const attempt = row.attempts + 1;
    if (!e.retryable || attempt >= this.#o.maxAttempts) return { state: 'failed', at: now, error };
    const delay = e.retryAfterMs ?? backoffDelay(attempt, this.#o.random);
    return { state: 'pending', nextAttemptAt: now + delay, error };
  }
}

// Tells the cloud which cameras this device has (maker, model, address, capture path, status):
// the whole list, sent when it changes and every `resendMs` in case the cloud lost it. Like
// the heartbeat it is never queued: a failed send is retried with backoff, always with the
// latest list.
import type { CameraInventoryItem, CameraInventoryResponse } from '@vigil/protocol';
import type { CloudClient } from '../cloud/cloud-client.js';
import { backoffDelay } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { Waker } from '../lib/waker.js';

export const INVENTORY_RESEND_MS = 15 * 60_000;
/** How often the list is rebuilt to see whether it changed (capture paths change by themselves). */
export const INVENTORY_CHECK_MS = 30_000;

export interface InventoryReporterOptions {
  client: CloudClient;
  clock: Clock;
  log: Logger;
  items: () => CameraInventoryItem[];
  resendMs?: number;
  checkMs?: number;
  random?: () => number;
}

export class InventoryReporter {
  readonly status = { sent: 0, failed: 0, lastSentAt: null as number | null, lastError: null as string | null };
  readonly #waker: Waker;
  #failures = 0;

  constructor(private readonly o: InventoryReporterOptions) {
    this.#waker = new Waker(o.clock);
  }

  /** Something changed: send soon. */
  changed(): void {
    this.#waker.wake();
  }

  async start(signal: AbortSignal): Promise<void> {
    const { clock } = this.o;
    let sent: string | null = null;
    let sentAt = -Infinity;
    while (!signal.aborted) {
      const items = this.o.items();
      const body = JSON.stringify(items);
      let wait = this.o.checkMs ?? INVENTORY_CHECK_MS;
      if (body !== sent || clock.monotonic() - sentAt >= (this.o.resendMs ?? INVENTORY_RESEND_MS)) {
        if (await this.send(items, signal)) {
          sent = body;
          sentAt = clock.monotonic();
        } else {
          wait = backoffDelay(this.#failures, this.o.random ?? Math.random);
        }
      }
      await this.#waker.wait(wait, signal);
    }
  }

  private async send(cameras: CameraInventoryItem[], signal: AbortSignal): Promise<boolean> {
    const { client, log } = this.o;
    try {
      await client.call<CameraInventoryResponse>('PUT', '/v1/cameras/inventory', { cameras }, { signal });
    } catch (err) {
      if (signal.aborted) return false;
      const message = err instanceof Error ? err.message : String(err);
      if (this.#failures === 0) log.warn({ err: message }, 'camera inventory not sent; retrying');
      this.#failures++;
      this.status.failed++;
      this.status.lastError = message;
      return false;
    }
    this.#failures = 0;
    this.status.sent++;
    this.status.lastSentAt = this.o.clock.monotonic();
    this.status.lastError = null;
    log.info({ cameras: cameras.length }, 'camera inventory sent');
    return true;
  }
}

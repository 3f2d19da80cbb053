import type { Logger } from 'pino';
import { newId } from '../lib/ids.js';
import type { AlertRecord, AlertStore, NewAlert, NotificationEvent, Notify } from '../store/alert-types.js';

/** The JSON body every webhook receives (README: "Webhooks"). */
export interface WebhookPayload {
  /** The notification's id: the same on every retry, so a receiver can drop duplicates. */
  id: string;
  event: NotificationEvent;
  /** When the change happened, epoch ms. */
  at: number;
  alert: AlertRecord;
}

export interface AlertServiceOptions {
  store: AlertStore;
  /** Webhook URLs; each change is one notification per target. */
  targets: readonly string[];
  now: () => number;
  /** Called after notifications were recorded (wakes the dispatcher). */
  onEnqueued: () => void;
  /** Called after every change (wakes the live stream). */
  onChanged?: () => void;
  logger: Logger;
}

/**
 * The cloud's one way to raise and settle alerts, for the fleet watch now and scene events
 * later. Every change goes through the store in one transaction with its notifications.
 */
export class AlertService {
  readonly #o: AlertServiceOptions;

  constructor(o: AlertServiceOptions) {
    this.#o = o;
  }

  /** Opens an alert unless the same (kind, device, camera) is already open. */
  async open(a: Omit<NewAlert, 'id' | 'openedAt'>): Promise<{ alert: AlertRecord; created: boolean }> {
    const now = this.#o.now();
    const r = await this.#o.store.openAlert({ ...a, id: newId('alt'), openedAt: now }, this.#notify('alert.opened', now), now);
    if (r.created) {
      this.#o.logger.warn({ alertId: r.alert.id, kind: a.kind, deviceId: a.deviceId, cameraId: a.cameraId }, `alert opened: ${a.title}`);
      this.#enqueued();
    }
    return r;
  }

  /** Closes an open alert; null when it was not open. */
  async close(id: string, resolution: string): Promise<AlertRecord | null> {
    const now = this.#o.now();
    const alert = await this.#o.store.closeAlert(id, now, resolution, this.#notify('alert.closed', now));
    if (alert) {
      this.#o.logger.info({ alertId: id, kind: alert.kind, deviceId: alert.deviceId, resolution }, `alert closed: ${alert.title}`);
      this.#enqueued();
    }
    return alert;
  }

  /** Stores a diagnosis; receivers hear of it only while the alert is still open. */
  async diagnose(id: string, diagnosis: string): Promise<AlertRecord | null> {
    const now = this.#o.now();
    const notify = this.#notify('alert.diagnosed', now);
    const alert = await this.#o.store.setDiagnosis(id, diagnosis, (a) => (a.state === 'open' ? notify(a) : []), now);
    if (alert?.state === 'open') this.#enqueued();
    return alert;
  }

  /** Marks an open alert acknowledged by `by` (a critical one stops being sent again). */
  async acknowledge(id: string, by: string): Promise<AlertRecord | null> {
    const now = this.#o.now();
    const alert = await this.#o.store.acknowledge(id, by, now, this.#notify('alert.acknowledged', now));
    if (alert) {
      this.#o.logger.info({ alertId: id, kind: alert.kind, by }, `alert acknowledged: ${alert.title}`);
      this.#enqueued();
    }
    return alert;
  }

  /** Sends an open, unacknowledged alert again, unless it was sent again since `seen` was read. */
  async renotify(seen: AlertRecord): Promise<AlertRecord | null> {
    const now = this.#o.now();
    const alert = await this.#o.store.renotify(seen.id, seen.lastNotifiedAt, now, this.#notify('alert.renotified', now));
    if (alert) {
      this.#o.logger.warn({ alertId: seen.id, kind: alert.kind, openedAt: alert.openedAt }, `alert still unacknowledged, sent again: ${alert.title}`);
      this.#enqueued();
    }
    return alert;
  }

  /**
   * The notifications of one change, for a store method that changes an alert inside a wider
   * transaction (an analysed batch opens its scene alert); call `enqueued()` after it commits.
   */
  notifier(event: NotificationEvent, at: number): Notify {
    return this.#notify(event, at);
  }

  enqueued(): void {
    this.#enqueued();
  }

  #notify(event: NotificationEvent, at: number): Notify {
    return (alert) =>
      this.#o.targets.map((target) => {
        const id = newId('ntf');
        const payload: WebhookPayload = { id, event, at, alert };
        return { id, event, target, payload: JSON.stringify(payload) };
      });
  }

  #enqueued(): void {
    this.#o.onChanged?.();
    if (this.#o.targets.length > 0) this.#o.onEnqueued();
  }
}

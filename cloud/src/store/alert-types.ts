// Alerts and their notifications. An alert is about one device (and maybe one of its
// cameras); at most one alert per (kind, device, camera) is open at a time. Opening, closing
// and diagnosing enqueue notifications in the same transaction, so an alert never changes
// without its notifications being recorded (and a crash never sends one for a change that
// was rolled back). Kinds are open-ended strings: fleet health ('device_silent', ...) and
// 'scene' (analysis/scene-alerts.ts). Acknowledging is not closing: it says a person has it in
// hand (a critical alert stops being re-notified); an alert closes when its cause is over.

import type { RiskLevel } from '../analysis/analyser.js';

export type AlertState = 'open' | 'closed';

export interface AlertRecord {
  id: string;
  kind: string;
  deviceId: string;
  /** Names as they were when read, for people and notifications. */
  deviceName: string;
  site: string;
  cameraId: string | null;
  cameraKey: string | null;
  cameraName: string | null;
  state: AlertState;
  openedAt: number;
  closedAt: number | null;
  title: string;
  detail: Record<string, unknown>;
  /** A model's advice on the likely cause; null until (or unless) triage gives one. */
  diagnosis: string | null;
  /** Why it closed ("heartbeat received", "device revoked"). */
  resolution: string | null;
  /** Fleet alerts are 'high'; a scene alert has its events' highest level. */
  level: RiskLevel;
  acknowledgedAt: number | null;
  /** Who acknowledged it (a user name). */
  acknowledgedBy: string | null;
  /** Scene alerts: the latest event that joined it, and how many did. */
  lastEventAt: number | null;
  eventCount: number;
  /** When receivers last heard of it (opened, escalated, re-notified). */
  lastNotifiedAt: number | null;
}

export interface NewAlert {
  id: string;
  kind: string;
  deviceId: string;
  cameraId: string | null;
  openedAt: number;
  title: string;
  detail: Record<string, unknown>;
  /** Default 'high'. */
  level?: RiskLevel;
}

export const NOTIFICATION_EVENTS = [
  'alert.opened',
  'alert.closed',
  'alert.diagnosed',
  'alert.acknowledged',
  'alert.escalated',
  'alert.renotified',
] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

export type NotificationState = 'pending' | 'delivered' | 'failed';

/** One delivery of one event to one target, with the exact body that is sent. */
export interface NotificationDraft {
  id: string;
  event: NotificationEvent;
  target: string;
  payload: string;
}

export interface NotificationRecord extends NotificationDraft {
  alertId: string;
  state: NotificationState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
  failedAt: number | null;
}

/** Builds an alert change's notifications; called inside the store's transaction. */
export type Notify = (alert: AlertRecord) => NotificationDraft[];

export type DeliveryOutcome =
  | { state: 'delivered'; at: number }
  | { state: 'pending'; nextAttemptAt: number; error: string }
  | { state: 'failed'; at: number; error: string };

export interface AlertFilter {
  state?: AlertState | undefined;
  deviceId?: string | undefined;
  kind?: string | undefined;
  limit: number;
}

export interface AlertStore {
  /** Opens the alert unless one of its (kind, device, camera) is open; returns the open one. */
  openAlert(alert: NewAlert, notify: Notify, now: number): Promise<{ alert: AlertRecord; created: boolean }>;
  /** Closes an open alert; null when it is not open (already closed, or unknown). */
  closeAlert(id: string, closedAt: number, resolution: string, notify: Notify): Promise<AlertRecord | null>;
  setDiagnosis(id: string, diagnosis: string, notify: Notify, now: number): Promise<AlertRecord | null>;
  /** Marks an open alert acknowledged; null when it is not open or already acknowledged. */
  acknowledge(id: string, by: string, now: number, notify: Notify): Promise<AlertRecord | null>;
  /**
   * Tells receivers again about an open, unacknowledged alert whose last notification is still
   * the one the caller saw (`seenNotifiedAt`, its lastNotifiedAt); null otherwise — no longer
   * such an alert, or another process re-notified it meanwhile.
   */
  renotify(id: string, seenNotifiedAt: number | null, now: number, notify: Notify): Promise<AlertRecord | null>;
  getAlert(id: string): Promise<AlertRecord | null>;
  /** Open alerts first, then newest first. */
  listAlerts(filter: AlertFilter): Promise<AlertRecord[]>;
  openAlerts(deviceId?: string): Promise<AlertRecord[]>;

  notificationsFor(alertId: string): Promise<NotificationRecord[]>;
  /**
   * Takes up to `limit` pending notifications due at `now` and leases them until `leaseUntil`
   * (their next attempt moves there), so a crash mid-delivery only delays them and two
   * deliverers never send the same row at once.
   */
  claimDueNotifications(now: number, limit: number, leaseUntil: number): Promise<NotificationRecord[]>;
  /** When the next pending notification is due, or null when none is pending. */
  nextNotificationAt(): Promise<number | null>;
  /** Records one attempt's outcome (and counts the attempt). */
  recordDelivery(id: string, outcome: DeliveryOutcome): Promise<void>;
}

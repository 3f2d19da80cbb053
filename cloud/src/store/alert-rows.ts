import type { RiskLevel } from '../analysis/analyser.js';
import type { AlertRecord, AlertState, NotificationEvent, NotificationRecord, NotificationState } from './alert-types.js';
import type { Row } from './sqlite-rows.js';

// Alert and notification rows → records, and the alert query, shared by the SQLite and the
// PostgreSQL stores (the two schemas have the same columns, and both give numbers for times).

/** The changes that tell receivers of an alert that needs them (re-notification counts from these). */
export const NOTIFIED_EVENTS = new Set<NotificationEvent>(['alert.opened', 'alert.escalated', 'alert.renotified']);

// Names come from the device and camera tables, and the camera's reported name when it has
// none of its own, so people read "front door", not an id.
export const ALERT_SELECT = `SELECT a.*, d.name AS device_name, s.name AS site, c.key AS camera_key, coalesce(c.name, w.reported_name) AS camera_name
  FROM alerts a JOIN devices d ON d.id = a.device_id JOIN sites s ON s.id = d.site_id
  LEFT JOIN cameras c ON c.id = a.camera_id LEFT JOIN camera_watch w ON w.camera_id = a.camera_id`;

export function toAlert(r: Row): AlertRecord {
  return {
    id: r.id as string,
    kind: r.kind as string,
    deviceId: r.device_id as string,
    deviceName: r.device_name as string,
    site: r.site as string,
    cameraId: (r.camera_id as string | null) ?? null,
    cameraKey: (r.camera_key as string | null) ?? null,
    cameraName: (r.camera_name as string | null) ?? null,
    state: r.state as AlertState,
    openedAt: r.opened_at as number,
    closedAt: (r.closed_at as number | null) ?? null,
    title: r.title as string,
    detail: JSON.parse(r.detail as string) as Record<string, unknown>,
    diagnosis: (r.diagnosis as string | null) ?? null,
    resolution: (r.resolution as string | null) ?? null,
    level: r.level as RiskLevel,
    acknowledgedAt: (r.acknowledged_at as number | null) ?? null,
    acknowledgedBy: (r.acknowledged_by as string | null) ?? null,
    lastEventAt: (r.last_event_at as number | null) ?? null,
    eventCount: r.event_count as number,
    lastNotifiedAt: (r.last_notified_at as number | null) ?? null,
  };
}

export function toNotification(r: Row): NotificationRecord {
  return {
    id: r.id as string,
    alertId: r.alert_id as string,
    event: r.event as NotificationEvent,
    target: r.target as string,
    payload: r.payload as string,
    state: r.state as NotificationState,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number,
    lastError: (r.last_error as string | null) ?? null,
    createdAt: r.created_at as number,
    deliveredAt: (r.delivered_at as number | null) ?? null,
    failedAt: (r.failed_at as number | null) ?? null,
  };
}

/** Deliver oldest first (RETURNING gives no order). */
export function byCreation(a: NotificationRecord, b: NotificationRecord): number {
  return a.createdAt - b.createdAt || a.id.localeCompare(b.id);
}

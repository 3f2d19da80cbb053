import type Database from 'better-sqlite3';
import { ALERT_SELECT, byCreation, NOTIFIED_EVENTS, toAlert, toNotification } from './alert-rows.js';
import type { AlertFilter, AlertRecord, AlertStore, DeliveryOutcome, NewAlert, NotificationDraft, NotificationEvent, NotificationRecord, Notify } from './alert-types.js';
import type { RiskLevel } from '../analysis/analyser.js';
import type { Row } from './sqlite-rows.js';

/** Alerts and notifications in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteAlertStore implements AlertStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async openAlert(a: NewAlert, notify: Notify, now: number): Promise<{ alert: AlertRecord; created: boolean }> {
    return this.#db.transaction(() => this.openInTransaction(a, notify, now)).immediate();
  }

  /**
   * openAlert's body, for a caller already inside a transaction on this database (the
   * analysis store records an event and its alert together).
   */
  openInTransaction(a: NewAlert, notify: Notify, now: number): { alert: AlertRecord; created: boolean } {
    const s = this.#s;
    // The partial unique index keeps one open alert per (kind, device, camera), even
    // across processes; losing that race just means the other one is the alert.
    const inserted = s.insertAlert.run({ ...a, level: a.level ?? 'high', detail: JSON.stringify(a.detail) }).changes === 1;
    if (!inserted) {
      const open = s.openAlertFor.get(a.kind, a.deviceId, a.cameraId ?? '') as Row;
      return { alert: toAlert(open), created: false };
    }
    return { alert: this.#changed(a.id, 'alert.opened', notify, now), created: true };
  }

  /** The open alert of (kind, device, camera), or null; inside or outside a transaction. */
  openAlertFor(kind: string, deviceId: string, cameraId: string | null): AlertRecord | null {
    const row = this.#s.openAlertFor.get(kind, deviceId, cameraId ?? '') as Row | undefined;
    return row ? toAlert(row) : null;
  }

  /**
   * A scene event joins an open alert, inside the caller's transaction: the count and time move,
   * the level rises when `escalateTo` is higher. Receivers hear of an escalation when `notify`.
   */
  attachEventInTransaction(id: string, at: number, escalateTo: RiskLevel | null, notify: Notify): AlertRecord {
    const s = this.#s;
    s.attachEvent.run(at, id);
    if (escalateTo !== null && s.escalate.run({ level: escalateTo, id }).changes === 1) {
      return this.#changed(id, 'alert.escalated', notify, at);
    }
    return toAlert(s.alert.get(id) as Row);
  }

  async closeAlert(id: string, closedAt: number, resolution: string, notify: Notify): Promise<AlertRecord | null> {
    const s = this.#s;
    return this.#db
      .transaction(() => (s.closeAlert.run(closedAt, resolution, id).changes === 1 ? this.#changed(id, 'alert.closed', notify, closedAt) : null))
      .immediate();
  }

  async setDiagnosis(id: string, diagnosis: string, notify: Notify, now: number): Promise<AlertRecord | null> {
    const s = this.#s;
    return this.#db
      .transaction(() => (s.setDiagnosis.run(diagnosis, id).changes === 1 ? this.#changed(id, 'alert.diagnosed', notify, now) : null))
      .immediate();
  }

  async acknowledge(id: string, by: string, now: number, notify: Notify): Promise<AlertRecord | null> {
    const s = this.#s;
    return this.#db
      .transaction(() => (s.acknowledge.run(now, by, id).changes === 1 ? this.#changed(id, 'alert.acknowledged', notify, now) : null))
      .immediate();
  }

  async renotify(id: string, seenNotifiedAt: number | null, now: number, notify: Notify): Promise<AlertRecord | null> {
    const s = this.#s;
    return this.#db
      .transaction(() => (s.renotified.run(now, id, seenNotifiedAt).changes === 1 ? this.#changed(id, 'alert.renotified', notify, now) : null))
      .immediate();
  }

  async getAlert(id: string): Promise<AlertRecord | null> {
    const row = this.#s.alert.get(id) as Row | undefined;
    return row ? toAlert(row) : null;
  }

  async listAlerts(f: AlertFilter): Promise<AlertRecord[]> {
    const rows = this.#s.alerts.all({ state: f.state ?? null, deviceId: f.deviceId ?? null, kind: f.kind ?? null, limit: f.limit }) as Row[];
    return rows.map(toAlert);
  }

  async openAlerts(deviceId?: string): Promise<AlertRecord[]> {
    return (this.#s.openAlerts.all({ deviceId: deviceId ?? null }) as Row[]).map(toAlert);
  }

  async notificationsFor(alertId: string): Promise<NotificationRecord[]> {
    return (this.#s.notificationsFor.all(alertId) as Row[]).map(toNotification);
  }

  async claimDueNotifications(now: number, limit: number, leaseUntil: number): Promise<NotificationRecord[]> {
    const rows = this.#db.transaction(() => this.#s.claimDue.all({ now, limit, leaseUntil }) as Row[]).immediate();
    return rows.map(toNotification).sort(byCreation);
  }

  async nextNotificationAt(): Promise<number | null> {
    const row = this.#s.nextDue.get() as Row;
    return (row.at as number | null) ?? null;
  }

  async recordDelivery(id: string, o: DeliveryOutcome): Promise<void> {
    const s = this.#s;
    if (o.state === 'delivered') s.markDelivered.run(o.at, id);
    else if (o.state === 'pending') s.markRetry.run(o.nextAttemptAt, o.error, id);
    else s.markFailed.run(o.at, o.error, id);
  }

  /**
   * After a change to alert `id`, in its transaction: its notifications are queued, the live
   * stream gets a message, and an alert receivers hear of notes when they did.
   */
  #changed(id: string, event: NotificationEvent, notify: Notify, now: number): AlertRecord {
    const s = this.#s;
    let alert = toAlert(s.alert.get(id) as Row);
    const drafts: NotificationDraft[] = notify(alert);
    for (const d of drafts) s.insertNotification.run(d.id, alert.id, d.event, d.target, d.payload, now, now);
    if (drafts.length > 0 && NOTIFIED_EVENTS.has(event)) {
      s.notified.run(now, id);
      alert = toAlert(s.alert.get(id) as Row);
    }
    s.insertStream.run(event, JSON.stringify({ alert }), now);
    return alert;
  }
}

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertAlert: p(
      `INSERT INTO alerts (id, kind, device_id, camera_id, state, opened_at, title, detail, level)
       VALUES (:id, :kind, :deviceId, :cameraId, 'open', :openedAt, :title, :detail, :level) ON CONFLICT DO NOTHING`,
    ),
    attachEvent: p('UPDATE alerts SET event_count = event_count + 1, last_event_at = max(coalesce(last_event_at, 0), ?) WHERE id = ?'),
    // Levels order as their names' positions in this list.
    escalate: p(
      `UPDATE alerts SET level = :level WHERE id = :id AND state = 'open'
       AND instr('low,medium,high,critical', level) < instr('low,medium,high,critical', :level)`,
    ),
    acknowledge: p(`UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND state = 'open' AND acknowledged_at IS NULL`),
    renotified: p(`UPDATE alerts SET last_notified_at = ? WHERE id = ? AND state = 'open' AND acknowledged_at IS NULL AND last_notified_at IS ?`),
    notified: p('UPDATE alerts SET last_notified_at = ? WHERE id = ?'),
    insertStream: p('INSERT INTO stream (type, payload, created_at) VALUES (?, ?, ?)'),
    alert: p(`${ALERT_SELECT} WHERE a.id = ?`),
    openAlertFor: p(`${ALERT_SELECT} WHERE a.state = 'open' AND a.kind = ? AND a.device_id = ? AND coalesce(a.camera_id, '') = ?`),
    closeAlert: p(`UPDATE alerts SET state = 'closed', closed_at = ?, resolution = ? WHERE id = ? AND state = 'open'`),
    setDiagnosis: p('UPDATE alerts SET diagnosis = ? WHERE id = ?'),
    alerts: p(
      `${ALERT_SELECT} WHERE (:state IS NULL OR a.state = :state) AND (:deviceId IS NULL OR a.device_id = :deviceId)
       AND (:kind IS NULL OR a.kind = :kind) ORDER BY a.state = 'open' DESC, a.opened_at DESC, a.id LIMIT :limit`,
    ),
    openAlerts: p(`${ALERT_SELECT} WHERE a.state = 'open' AND (:deviceId IS NULL OR a.device_id = :deviceId) ORDER BY a.opened_at`),
    insertNotification: p(
      `INSERT INTO notifications (id, alert_id, event, target, payload, state, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`,
    ),
    notificationsFor: p('SELECT * FROM notifications WHERE alert_id = ? ORDER BY created_at, id'),
    claimDue: p(
      `UPDATE notifications SET next_attempt_at = :leaseUntil WHERE id IN
         (SELECT id FROM notifications WHERE state = 'pending' AND next_attempt_at <= :now ORDER BY next_attempt_at, created_at LIMIT :limit)
       RETURNING *`,
    ),
    nextDue: p(`SELECT min(next_attempt_at) AS at FROM notifications WHERE state = 'pending'`),
    markDelivered: p(`UPDATE notifications SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?`),
    markRetry: p(`UPDATE notifications SET next_attempt_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ? AND state = 'pending'`),
    markFailed: p(`UPDATE notifications SET state = 'failed', failed_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?`),
  };
}

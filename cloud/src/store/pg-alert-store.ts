import type pg from 'pg';
import type { RiskLevel } from '../analysis/analyser.js';
import { ALERT_SELECT, byCreation, NOTIFIED_EVENTS, toAlert, toNotification } from './alert-rows.js';
import type { AlertFilter, AlertRecord, AlertStore, DeliveryOutcome, NewAlert, NotificationEvent, NotificationRecord, Notify } from './alert-types.js';
import { all, inTransaction, one, run, type PgClient } from './pg-db.js';
import { appendStream } from './pg-stream.js';

/**
 * Live-stream messages a transaction has to append. They are appended at its end, because the
 * append takes the stream's lock until commit (pg-stream.ts).
 */
export type StreamDrafts = { type: string; payload: string }[];

export async function appendStreamDrafts(c: PgClient, drafts: StreamDrafts, now: number): Promise<void> {
  for (const d of drafts) await appendStream(c, d.type, d.payload, now);
}

/** Inserts tried when the open alert that blocked the insert keeps closing before it is read. */
const OPEN_TRIES = 5;
const ALERT_BY_ID = `${ALERT_SELECT} WHERE a.id = $1`;
const OPEN_ALERT_FOR = `${ALERT_SELECT} WHERE a.state = 'open' AND a.kind = $1 AND a.device_id = $2 AND coalesce(a.camera_id, '') = $3`;

/**
 * Alerts and notifications in PostgreSQL. Every change is one conditional statement (or an
 * insert against the one-open-alert index), so replicas changing one alert at once get one
 * winner and the others a null, never a second notification.
 */
export class PgAlertStore implements AlertStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async openAlert(a: NewAlert, notify: Notify, now: number): Promise<{ alert: AlertRecord; created: boolean }> {
    return inTransaction(this.#pool, async (c) => {
      const stream: StreamDrafts = [];
      const result = await this.openInTransaction(c, a, notify, now, stream);
      await appendStreamDrafts(c, stream, now);
      return result;
    });
  }

  /**
   * openAlert's body, inside the caller's transaction (the analysis store records an event and
   * its alert together). Its stream message goes to `stream`, for the caller to append last.
   */
  async openInTransaction(c: PgClient, a: NewAlert, notify: Notify, now: number, stream: StreamDrafts): Promise<{ alert: AlertRecord; created: boolean }> {
    for (let tries = 1; ; tries++) {
      // The partial unique index keeps one open alert per (kind, device, camera). A concurrent
      // insert of the same key waits for the other transaction, and on its commit becomes a
      // conflict: the other one's alert is the alert.
      const inserted = await run(
        c,
        `INSERT INTO alerts (id, kind, device_id, camera_id, state, opened_at, title, detail, level)
         VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
        [a.id, a.kind, a.deviceId, a.cameraId, a.openedAt, a.title, JSON.stringify(a.detail), a.level ?? 'high'],
      );
      if (inserted === 1) return { alert: await this.#changed(c, a.id, 'alert.opened', notify, now, stream), created: true };
      const open = await this.openAlertFor(c, a.kind, a.deviceId, a.cameraId);
      if (open) return { alert: open, created: false };
      // The conflicting alert closed between the insert and the read: try again. A conflict
      // with no open alert each time is on the id itself, which only a caller's bug reuses.
      if (tries >= OPEN_TRIES) throw new Error(`ALERT_ID_TAKEN: alert ${a.id} exists and no ${a.kind} alert of its device and camera is open`);
    }
  }

  /**
   * The open alert of (kind, device, camera), or null; on the pool or in a transaction. With
   * `lock`, its row stays locked until the transaction ends, so it is still open when the
   * caller attaches to it (a close that committed first makes this null).
   */
  async openAlertFor(q: PgClient | pg.Pool, kind: string, deviceId: string, cameraId: string | null, lock = false): Promise<AlertRecord | null> {
    const row = await one(q, lock ? `${OPEN_ALERT_FOR} FOR UPDATE OF a` : OPEN_ALERT_FOR, [kind, deviceId, cameraId ?? '']);
    return row ? toAlert(row) : null;
  }

  /**
   * A scene event joins an open alert, inside the caller's transaction: the count and time move,
   * the level rises when `escalateTo` is higher. Receivers hear of an escalation when `notify`.
   */
  async attachEventInTransaction(c: PgClient, id: string, at: number, escalateTo: RiskLevel | null, notify: Notify, stream: StreamDrafts): Promise<AlertRecord> {
    await run(c, 'UPDATE alerts SET event_count = event_count + 1, last_event_at = greatest(coalesce(last_event_at, 0), $1) WHERE id = $2', [at, id]);
    if (escalateTo !== null) {
      // Levels order as their positions in this array.
      const escalated = await run(
        c,
        `UPDATE alerts SET level = $1 WHERE id = $2 AND state = 'open'
         AND array_position(ARRAY['low', 'medium', 'high', 'critical'], level) < array_position(ARRAY['low', 'medium', 'high', 'critical'], $1::text)`,
        [escalateTo, id],
      );
      if (escalated === 1) return this.#changed(c, id, 'alert.escalated', notify, at, stream);
    }
    return toAlert((await one(c, ALERT_BY_ID, [id]))!);
  }

  async closeAlert(id: string, closedAt: number, resolution: string, notify: Notify): Promise<AlertRecord | null> {
    return this.#change(
      id,
      `UPDATE alerts SET state = 'closed', closed_at = $2, resolution = $3 WHERE id = $1 AND state = 'open'`,
      [closedAt, resolution],
      'alert.closed',
      notify,
      closedAt,
    );
  }

  async setDiagnosis(id: string, diagnosis: string, notify: Notify, now: number): Promise<AlertRecord | null> {
    return this.#change(id, 'UPDATE alerts SET diagnosis = $2 WHERE id = $1', [diagnosis], 'alert.diagnosed', notify, now);
  }

  async acknowledge(id: string, by: string, now: number, notify: Notify): Promise<AlertRecord | null> {
    return this.#change(
      id,
      `UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1 AND state = 'open' AND acknowledged_at IS NULL`,
      [now, by],
      'alert.acknowledged',
      notify,
      now,
    );
  }

  async renotify(id: string, seenNotifiedAt: number | null, now: number, notify: Notify): Promise<AlertRecord | null> {
    // The second of two replicas re-notifying at once waits for the first's row lock, then
    // finds last_notified_at moved from what it saw and changes nothing.
    return this.#change(
      id,
      `UPDATE alerts SET last_notified_at = $2 WHERE id = $1 AND state = 'open' AND acknowledged_at IS NULL
       AND last_notified_at IS NOT DISTINCT FROM $3::bigint`,
      [now, seenNotifiedAt],
      'alert.renotified',
      notify,
      now,
    );
  }

  async getAlert(id: string): Promise<AlertRecord | null> {
    const row = await one(this.#pool, ALERT_BY_ID, [id]);
    return row ? toAlert(row) : null;
  }

  async listAlerts(f: AlertFilter): Promise<AlertRecord[]> {
    const rows = await all(
      this.#pool,
      `${ALERT_SELECT} WHERE ($1::text IS NULL OR a.state = $1) AND ($2::text IS NULL OR a.device_id = $2)
       AND ($3::text IS NULL OR a.kind = $3) ORDER BY a.state = 'open' DESC, a.opened_at DESC, a.id COLLATE "C" LIMIT $4`,
      [f.state ?? null, f.deviceId ?? null, f.kind ?? null, f.limit],
    );
    return rows.map(toAlert);
  }

  async openAlerts(deviceId?: string): Promise<AlertRecord[]> {
    const rows = await all(this.#pool, `${ALERT_SELECT} WHERE a.state = 'open' AND ($1::text IS NULL OR a.device_id = $1) ORDER BY a.opened_at, a.id COLLATE "C"`, [
      deviceId ?? null,
    ]);
    return rows.map(toAlert);
  }

  async notificationsFor(alertId: string): Promise<NotificationRecord[]> {
    return (await all(this.#pool, 'SELECT * FROM notifications WHERE alert_id = $1 ORDER BY created_at, id COLLATE "C"', [alertId])).map(toNotification);
  }

  async claimDueNotifications(now: number, limit: number, leaseUntil: number): Promise<NotificationRecord[]> {
    // Rows another deliverer is claiming right now are skipped, not waited for: each claim
    // takes disjoint rows.
    const rows = await all(
      this.#pool,
      `WITH due AS (
         SELECT id FROM notifications WHERE state = 'pending' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE notifications n SET next_attempt_at = $3 FROM due WHERE n.id = due.id RETURNING n.*`,
      [now, limit, leaseUntil],
    );
    return rows.map(toNotification).sort(byCreation);
  }

  async nextNotificationAt(): Promise<number | null> {
    const row = await one(this.#pool, `SELECT min(next_attempt_at) AS at FROM notifications WHERE state = 'pending'`);
    return (row?.at as number | null | undefined) ?? null;
  }

  async recordDelivery(id: string, o: DeliveryOutcome): Promise<void> {
    if (o.state === 'delivered') {
      await run(this.#pool, `UPDATE notifications SET state = 'delivered', delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2`, [o.at, id]);
    } else if (o.state === 'pending') {
      await run(this.#pool, `UPDATE notifications SET next_attempt_at = $1, last_error = $2, attempts = attempts + 1 WHERE id = $3 AND state = 'pending'`, [
        o.nextAttemptAt,
        o.error,
        id,
      ]);
    } else {
      await run(this.#pool, `UPDATE notifications SET state = 'failed', failed_at = $1, last_error = $2, attempts = attempts + 1 WHERE id = $3`, [o.at, o.error, id]);
    }
  }

  /** One conditional update of alert `id` ($1; `params` are $2...) and, when it applied, its notifications. */
  async #change(id: string, sql: string, params: unknown[], event: NotificationEvent, notify: Notify, now: number): Promise<AlertRecord | null> {
    return inTransaction(this.#pool, async (c) => {
      if ((await run(c, sql, [id, ...params])) !== 1) return null;
      const stream: StreamDrafts = [];
      const alert = await this.#changed(c, id, event, notify, now, stream);
      await appendStreamDrafts(c, stream, now);
      return alert;
    });
  }

  /**
   * After a change to alert `id`, in its transaction: its notifications are queued, the live
   * stream's message drafted, and an alert receivers hear of notes when they did.
   */
  async #changed(c: PgClient, id: string, event: NotificationEvent, notify: Notify, now: number, stream: StreamDrafts): Promise<AlertRecord> {
    let alert = toAlert((await one(c, ALERT_BY_ID, [id]))!);
    const drafts = notify(alert);
    for (const d of drafts) {
      await run(
        c,
        `INSERT INTO notifications (id, alert_id, event, target, payload, state, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)`,
        [d.id, alert.id, d.event, d.target, d.payload, now],
      );
    }
    if (drafts.length > 0 && NOTIFIED_EVENTS.has(event)) {
      await run(c, 'UPDATE alerts SET last_notified_at = $1 WHERE id = $2', [now, id]);
      alert = toAlert((await one(c, ALERT_BY_ID, [id]))!);
    }
    stream.push({ type: event, payload: JSON.stringify({ alert }) });
    return alert;
  }
}

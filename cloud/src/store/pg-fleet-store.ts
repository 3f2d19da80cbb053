import type pg from 'pg';
import type { CameraHealth, HeartbeatRequest } from '@vigil/protocol';
import { healthColumns, maxOrNull, summariseQueue, toHealth, toQueueSample, toWatch, WATCH_COLUMNS } from './fleet-rows.js';
import type { CameraWatch, FleetDevice, FleetStore, FrozenRun, HeartbeatInput, QueueSample } from './fleet-types.js';
import { all, inTransaction, one, run } from './pg-db.js';
import { DEVICE_COLUMNS, INVENTORY_COLUMNS, toDevice } from './sqlite-rows.js';

// The stored report's `local` as JSON text; ->> gives SQL NULL when it is absent or null.
const HEALTH_COLUMNS = healthColumns("h.report::json ->> 'local'");

const CAMERA_WATCH = `SELECT ${WATCH_COLUMNS}, ${INVENTORY_COLUMNS}
  FROM cameras c LEFT JOIN camera_watch w ON w.camera_id = c.id LEFT JOIN camera_inventory i ON i.camera_id = c.id`;

/** The fleet watch's tables in PostgreSQL (migrated by PgStore); same behaviour as SqliteFleetStore. */
export class PgFleetStore implements FleetStore {
  constructor(readonly pool: pg.Pool) {}

  async recordHeartbeat(i: HeartbeatInput): Promise<void> {
    const r = i.report;
    const byKey = new Map<string, CameraHealth>();
    for (const c of r.cameras) byKey.set(c.camera, c);
    const queue = summariseQueue(r);
    const counts = { ok: 0, failing: 0, stopped: 0 };
    for (const c of byKey.values()) counts[c.state]++;
    await inTransaction(this.pool, async (c) => {
      // Two heartbeats of one device on two replicas take turns here, so the cleared and
      // re-set camera states, the health row and the history pruning are each one report's.
      // NO KEY UPDATE (what the last_seen_at update below takes anyway) rather than UPDATE:
      // inserts that only reference the device (frames, camera_watch rows) need not wait.
      await one(c, 'SELECT id FROM devices WHERE id = $1 FOR NO KEY UPDATE', [i.deviceId]);
      await run(
        c,
        `UPDATE camera_watch SET reported_state = NULL, reported_name = NULL, reported_error = NULL, reported_capture_at = NULL, reported_failures = NULL
         WHERE device_id = $1`,
        [i.deviceId],
      );
      for (const cam of byKey.values()) {
        await run(c, 'INSERT INTO cameras (id, device_id, key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, key) DO NOTHING', [
          i.newCameraId(),
          i.deviceId,
          cam.camera,
          i.receivedAt,
        ]);
        const cameraId = (await one(c, 'SELECT id FROM cameras WHERE device_id = $1 AND key = $2', [i.deviceId, cam.camera]))!.id as string;
        await run(
          c,
          `INSERT INTO camera_watch (camera_id, device_id, reported_state, reported_name, reported_error, reported_capture_at, reported_failures)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (camera_id) DO UPDATE SET reported_state = excluded.reported_state, reported_name = excluded.reported_name,
             reported_error = excluded.reported_error, reported_capture_at = excluded.reported_capture_at, reported_failures = excluded.reported_failures`,
          [cameraId, i.deviceId, cam.state, cam.name, cam.lastError, cam.lastCaptureAt, cam.failures],
        );
      }
      await run(
        c,
        `INSERT INTO device_health (device_id, received_at, sent_at, verdict, verdict_reason, agent_version, firmware_version, firmware_slot,
           queue_depth, oldest_queued_ms, cameras_total, cameras_ok, cameras_failing, cameras_stopped, report)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (device_id) DO UPDATE SET received_at = excluded.received_at, sent_at = excluded.sent_at, verdict = excluded.verdict,
           verdict_reason = excluded.verdict_reason, agent_version = excluded.agent_version, firmware_version = excluded.firmware_version,
           firmware_slot = excluded.firmware_slot, queue_depth = excluded.queue_depth, oldest_queued_ms = excluded.oldest_queued_ms,
           cameras_total = excluded.cameras_total, cameras_ok = excluded.cameras_ok, cameras_failing = excluded.cameras_failing,
           cameras_stopped = excluded.cameras_stopped, report = excluded.report`,
        [
          i.deviceId,
          i.receivedAt,
          r.sentAt,
          r.verdict,
          r.verdictReason,
          r.agentVersion,
          r.firmware.version,
          r.firmware.slot,
          queue.compressed.depth + queue.original.depth,
          maxOrNull(queue.compressed.oldest, queue.original.oldest),
          byKey.size,
          counts.ok,
          counts.failing,
          counts.stopped,
          JSON.stringify(r),
        ],
      );
      await run(
        c,
        `INSERT INTO heartbeats (device_id, received_at, verdict, compressed_depth, original_depth, compressed_oldest_ms, original_oldest_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [i.deviceId, i.receivedAt, r.verdict, queue.compressed.depth, queue.original.depth, queue.compressed.oldest, queue.original.oldest],
      );
      // Everything older than the newest `keep` rows of this device goes (ids grow in this
      // device's commit order: its heartbeats are serialised by the lock above).
      await run(
        c,
        `DELETE FROM heartbeats WHERE device_id = $1 AND id <=
           (SELECT id FROM heartbeats WHERE device_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`,
        [i.deviceId, i.keepHistory],
      );
      // A heartbeat is exact evidence of life: last_seen_at takes its time, never going back.
      await run(c, 'UPDATE devices SET last_seen_at = greatest(coalesce(last_seen_at, 0), $1) WHERE id = $2', [i.receivedAt, i.deviceId]);
    });
  }

  async fleetDevices(deviceId?: string): Promise<FleetDevice[]> {
    const rows = await all(
      this.pool,
      `SELECT ${DEVICE_COLUMNS}, ${HEALTH_COLUMNS} FROM devices d JOIN sites s ON s.id = d.site_id
       LEFT JOIN device_health h ON h.device_id = d.id
       WHERE $1::text IS NULL OR d.id = $1 ORDER BY s.name COLLATE "C", d.name COLLATE "C"`,
      [deviceId ?? null],
    );
    return rows.map((r) => ({ device: toDevice(r), health: toHealth(r) }));
  }

  async latestReport(deviceId: string): Promise<{ receivedAt: number; report: HeartbeatRequest } | null> {
    const row = await one(this.pool, 'SELECT received_at, report FROM device_health WHERE device_id = $1', [deviceId]);
    return row ? { receivedAt: row.received_at as number, report: JSON.parse(row.report as string) as HeartbeatRequest } : null;
  }

  async queueHistory(deviceId: string, limit: number): Promise<QueueSample[]> {
    const rows = await all(this.pool, 'SELECT * FROM heartbeats WHERE device_id = $1 ORDER BY id DESC LIMIT $2', [deviceId, limit]);
    return rows.reverse().map(toQueueSample);
  }

  async cameraWatch(deviceId?: string): Promise<CameraWatch[]> {
    const rows = await all(this.pool, `${CAMERA_WATCH} WHERE $1::text IS NULL OR c.device_id = $1 ORDER BY c.device_id COLLATE "C", c.key COLLATE "C"`, [
      deviceId ?? null,
    ]);
    return rows.map(toWatch);
  }

  async getCameraWatch(cameraId: string): Promise<CameraWatch | null> {
    const row = await one(this.pool, `${CAMERA_WATCH} WHERE c.id = $1`, [cameraId]);
    return row ? toWatch(row) : null;
  }

  async saveFrameWatch(cameraId: string, deviceId: string, lastFrameAt: number, f: FrozenRun): Promise<void> {
    await run(
      this.pool,
      `INSERT INTO camera_watch (camera_id, device_id, last_frame_at, frozen_ref_dhash, frozen_count, frozen_last_captured_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (camera_id) DO UPDATE SET last_frame_at = greatest(coalesce(camera_watch.last_frame_at, 0), excluded.last_frame_at),
         frozen_ref_dhash = excluded.frozen_ref_dhash, frozen_count = excluded.frozen_count,
         frozen_last_captured_at = excluded.frozen_last_captured_at`,
      [cameraId, deviceId, lastFrameAt, f.refDhash, f.count, f.lastCapturedAt],
    );
  }
}

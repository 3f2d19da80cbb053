import type Database from 'better-sqlite3';
import type { CameraHealth, HeartbeatRequest } from '@vigil/protocol';
import { healthColumns, maxOrNull, summariseQueue, toHealth, toQueueSample, toWatch, WATCH_COLUMNS } from './fleet-rows.js';
import type { CameraWatch, FleetDevice, FleetStore, FrozenRun, HeartbeatInput, QueueSample } from './fleet-types.js';
import { DEVICE_COLUMNS, INVENTORY_COLUMNS, toDevice, type Row } from './sqlite-rows.js';

/** The fleet watch's tables in the embedded SQLite file (opened and migrated by SqliteStore). */
export class SqliteFleetStore implements FleetStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async recordHeartbeat(i: HeartbeatInput): Promise<void> {
    const s = this.#s;
    const r = i.report;
    const byKey = new Map<string, CameraHealth>();
    for (const c of r.cameras) byKey.set(c.camera, c);
    const queue = summariseQueue(r);
    const counts = { ok: 0, failing: 0, stopped: 0 };
    for (const c of byKey.values()) counts[c.state]++;
    this.#db
      .transaction(() => {
        s.clearReported.run(i.deviceId);
        for (const c of byKey.values()) {
          s.insertCamera.run(i.newCameraId(), i.deviceId, c.camera, i.receivedAt);
          const cameraId = (s.cameraIdByKey.get(i.deviceId, c.camera) as Row).id as string;
          s.upsertReported.run({
            cameraId,
            deviceId: i.deviceId,
            state: c.state,
            name: c.name,
            error: c.lastError,
            captureAt: c.lastCaptureAt,
            failures: c.failures,
          });
        }
        s.upsertHealth.run({
          deviceId: i.deviceId,
          receivedAt: i.receivedAt,
          sentAt: r.sentAt,
          verdict: r.verdict,
          verdictReason: r.verdictReason,
          agentVersion: r.agentVersion,
          firmwareVersion: r.firmware.version,
          firmwareSlot: r.firmware.slot,
          queueDepth: queue.compressed.depth + queue.original.depth,
          oldestQueuedMs: maxOrNull(queue.compressed.oldest, queue.original.oldest),
          total: byKey.size,
          ...counts,
          report: JSON.stringify(r),
        });
        s.insertHeartbeat.run(i.deviceId, i.receivedAt, r.verdict, queue.compressed.depth, queue.original.depth, queue.compressed.oldest, queue.original.oldest);
        s.pruneHeartbeats.run({ deviceId: i.deviceId, keep: i.keepHistory });
        s.touchDevice.run(i.receivedAt, i.deviceId);
      })
      .immediate();
  }

  async fleetDevices(deviceId?: string): Promise<FleetDevice[]> {
    return (this.#s.fleetDevices.all({ deviceId: deviceId ?? null }) as Row[]).map((r) => ({ device: toDevice(r), health: toHealth(r) }));
  }

  async latestReport(deviceId: string): Promise<{ receivedAt: number; report: HeartbeatRequest } | null> {
    const row = this.#s.report.get(deviceId) as Row | undefined;
    return row ? { receivedAt: row.received_at as number, report: JSON.parse(row.report as string) as HeartbeatRequest } : null;
  }

  async queueHistory(deviceId: string, limit: number): Promise<QueueSample[]> {
    return (this.#s.history.all(deviceId, limit) as Row[]).reverse().map(toQueueSample);
  }

  async cameraWatch(deviceId?: string): Promise<CameraWatch[]> {
    return (this.#s.cameraWatch.all({ deviceId: deviceId ?? null, cameraId: null }) as Row[]).map(toWatch);
  }

  async getCameraWatch(cameraId: string): Promise<CameraWatch | null> {
    const row = this.#s.cameraWatch.get({ deviceId: null, cameraId }) as Row | undefined;
    return row ? toWatch(row) : null;
  }

  async saveFrameWatch(cameraId: string, deviceId: string, lastFrameAt: number, f: FrozenRun): Promise<void> {
    this.#s.upsertFrame.run({ cameraId, deviceId, lastFrameAt, ref: f.refDhash, count: f.count, lastCapturedAt: f.lastCapturedAt });
  }
}

// The status page's address and PIN, straight from the stored report.
const HEALTH_COLUMNS = healthColumns("json_extract(h.report, '$.local')");

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    clearReported: p(
      `UPDATE camera_watch SET reported_state = NULL, reported_name = NULL, reported_error = NULL, reported_capture_at = NULL, reported_failures = NULL
       WHERE device_id = ?`,
    ),
    insertCamera: p('INSERT INTO cameras (id, device_id, key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, key) DO NOTHING'),
    cameraIdByKey: p('SELECT id FROM cameras WHERE device_id = ? AND key = ?'),
    upsertReported: p(
      `INSERT INTO camera_watch (camera_id, device_id, reported_state, reported_name, reported_error, reported_capture_at, reported_failures)
       VALUES (:cameraId, :deviceId, :state, :name, :error, :captureAt, :failures)
       ON CONFLICT (camera_id) DO UPDATE SET reported_state = excluded.reported_state, reported_name = excluded.reported_name,
         reported_error = excluded.reported_error, reported_capture_at = excluded.reported_capture_at, reported_failures = excluded.reported_failures`,
    ),
    upsertHealth: p(
      `INSERT INTO device_health (device_id, received_at, sent_at, verdict, verdict_reason, agent_version, firmware_version, firmware_slot,
         queue_depth, oldest_queued_ms, cameras_total, cameras_ok, cameras_failing, cameras_stopped, report)
       VALUES (:deviceId, :receivedAt, :sentAt, :verdict, :verdictReason, :agentVersion, :firmwareVersion, :firmwareSlot,
         :queueDepth, :oldestQueuedMs, :total, :ok, :failing, :stopped, :report)
       ON CONFLICT (device_id) DO UPDATE SET received_at = excluded.received_at, sent_at = excluded.sent_at, verdict = excluded.verdict,
         verdict_reason = excluded.verdict_reason, agent_version = excluded.agent_version, firmware_version = excluded.firmware_version,
         firmware_slot = excluded.firmware_slot, queue_depth = excluded.queue_depth, oldest_queued_ms = excluded.oldest_queued_ms,
         cameras_total = excluded.cameras_total, cameras_ok = excluded.cameras_ok, cameras_failing = excluded.cameras_failing,
         cameras_stopped = excluded.cameras_stopped, report = excluded.report`,
    ),
    insertHeartbeat: p(
      `INSERT INTO heartbeats (device_id, received_at, verdict, compressed_depth, original_depth, compressed_oldest_ms, original_oldest_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    // Everything older than the newest `keep` rows of this device goes.
    pruneHeartbeats: p(
      `DELETE FROM heartbeats WHERE device_id = :deviceId AND id <=
         (SELECT id FROM heartbeats WHERE device_id = :deviceId ORDER BY id DESC LIMIT 1 OFFSET :keep)`,
    ),
    // A heartbeat is exact evidence of life: last_seen_at takes its time, never going back.
    touchDevice: p('UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE id = ?'),
    fleetDevices: p(
      `SELECT ${DEVICE_COLUMNS}, ${HEALTH_COLUMNS} FROM devices d JOIN sites s ON s.id = d.site_id
       LEFT JOIN device_health h ON h.device_id = d.id
       WHERE :deviceId IS NULL OR d.id = :deviceId ORDER BY s.name, d.name`,
    ),
    report: p('SELECT received_at, report FROM device_health WHERE device_id = ?'),
    history: p('SELECT * FROM heartbeats WHERE device_id = ? ORDER BY id DESC LIMIT ?'),
    cameraWatch: p(
      `SELECT ${WATCH_COLUMNS}, ${INVENTORY_COLUMNS}
       FROM cameras c LEFT JOIN camera_watch w ON w.camera_id = c.id LEFT JOIN camera_inventory i ON i.camera_id = c.id
       WHERE (:deviceId IS NULL OR c.device_id = :deviceId) AND (:cameraId IS NULL OR c.id = :cameraId)
       ORDER BY c.device_id, c.key`,
    ),
    upsertFrame: p(
      `INSERT INTO camera_watch (camera_id, device_id, last_frame_at, frozen_ref_dhash, frozen_count, frozen_last_captured_at)
       VALUES (:cameraId, :deviceId, :lastFrameAt, :ref, :count, :lastCapturedAt)
       ON CONFLICT (camera_id) DO UPDATE SET last_frame_at = max(coalesce(last_frame_at, 0), excluded.last_frame_at),
         frozen_ref_dhash = excluded.frozen_ref_dhash, frozen_count = excluded.frozen_count,
         frozen_last_captured_at = excluded.frozen_last_captured_at`,
    ),
  };
}

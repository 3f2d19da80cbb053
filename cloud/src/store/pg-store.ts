import pg from 'pg';
import type { AlertStore } from './alert-types.js';
import type { AnalysisStore } from './analysis-types.js';
import type { EventStore } from './event-types.js';
import type { FirmwareStore } from './firmware-types.js';
import type { FleetStore } from './fleet-types.js';
import type { InventoryStore } from './inventory-types.js';
import { all, createPool, inTransaction, one, run } from './pg-db.js';
import { PgAlertStore } from './pg-alert-store.js';
import { PgAnalysisStore } from './pg-analysis-store.js';
import { PgEventStore } from './pg-event-store.js';
import { PgFirmwareStore } from './pg-firmware-store.js';
import { PgFleetStore } from './pg-fleet-store.js';
import { PgInventoryStore } from './pg-inventory-store.js';
import { PgLeaseStore } from './pg-lease-store.js';
import { migratePostgres } from './pg-migrations.js';
import { StreamListener } from './pg-stream.js';
import { PgUserStore } from './pg-user-store.js';
import { DEVICE_COLUMNS, INVENTORY_COLUMNS, toCamera, toDevice, toFrame, toInventory, toSite, toUpload } from './sqlite-rows.js';
import { LAST_SEEN_RESOLUTION_MS } from './types.js';
import type {
  CameraRecord,
  CameraWithStats,
  ClaimInput,
  ClaimResult,
  CloudStore,
  CompleteResult,
  DeviceRecord,
  FrameIdentity,
  FrameRecord,
  LeaseStore,
  ListFramesOptions,
  SiteRecord,
  UploadRecord,
} from './types.js';
import type { UserStore } from './user-types.js';

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Connections this process keeps at most. */
  poolSize: number;
}

const FRAME_COLUMNS = 'id, device_id, camera_id, captured_at, variant, bytes, sha256, dhash, object_key, received_at';
const DEVICE_SELECT = `SELECT ${DEVICE_COLUMNS} FROM devices d JOIN sites s ON s.id = d.site_id`;

/**
 * The store for larger fleets: PostgreSQL, shared by any number of cloud replicas. The same
 * records and rules as the embedded SqliteStore (the whole cloud test suite runs on both);
 * what differs is concurrency. SQLite runs one writer at a time; here transactions overlap,
 * so every read-then-write takes a row lock (FOR UPDATE) or is a single conditional statement,
 * and queues are claimed with FOR UPDATE SKIP LOCKED.
 */
export class PgStore implements CloudStore {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #url: string;
  readonly #listener: StreamListener;
  readonly fleet: FleetStore;
  readonly alerts: AlertStore;
  readonly inventory: InventoryStore;
  readonly firmware: FirmwareStore;
  readonly users: UserStore;
  readonly analysis: AnalysisStore;
  readonly events: EventStore;
  readonly leases: LeaseStore;

  private constructor(pool: pg.Pool, url: string) {
    this.#pool = pool;
    this.#url = url;
    this.#listener = new StreamListener(async () => {
      const c = new pg.Client({ connectionString: this.#url, application_name: 'vigil-cloud-listen' });
      await c.connect();
      return c;
    });
    this.fleet = new PgFleetStore(pool);
    const alerts = new PgAlertStore(pool);
    this.alerts = alerts;
    this.analysis = new PgAnalysisStore(pool, alerts);
    this.events = new PgEventStore(pool);
    this.inventory = new PgInventoryStore(pool);
    this.firmware = new PgFirmwareStore(pool);
    this.users = new PgUserStore(pool);
    this.leases = new PgLeaseStore(pool);
  }

  /** Connects and brings the schema up to date (several replicas may do this at once). */
  static async open(o: PgStoreOptions): Promise<PgStore> {
    const pool = createPool(o.url, { max: o.poolSize });
    try {
      await migratePostgres(pool);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PgStore(pool, o.url);
  }

  readonly watchStream = (listener: () => void): (() => void) => this.#listener.subscribe(listener);

  async createClaimCode(i: { siteName: string; newSiteId: string; codeHash: string; expiresAt: number; now: number }): Promise<SiteRecord> {
    return inTransaction(this.#pool, async (c) => {
      await run(c, 'INSERT INTO sites (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [i.newSiteId, i.siteName, i.now]);
      const site = toSite((await one(c, 'SELECT * FROM sites WHERE name = $1', [i.siteName]))!);
      await run(c, 'INSERT INTO claim_codes (code_hash, site_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [i.codeHash, site.id, i.now, i.expiresAt]);
      return site;
    });
  }

  async claim(i: ClaimInput): Promise<ClaimResult> {
    return inTransaction(this.#pool, async (c): Promise<ClaimResult> => {
      // The code's row lock orders concurrent claims of one code; the second sees it used.
      const code = await one(c, 'SELECT * FROM claim_codes WHERE code_hash = $1 FOR UPDATE', [i.codeHash]);
      if (!code) return { ok: false, reason: 'unknown' };
      const deviceById = async (id: string) => toDevice((await one(c, `${DEVICE_SELECT} WHERE d.id = $1`, [id]))!);
      const revokeTokens = (deviceId: string) => run(c, 'UPDATE device_tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL', [i.now, deviceId]);
      const insertToken = (deviceId: string) => run(c, 'INSERT INTO device_tokens (token_hash, device_id, created_at) VALUES ($1, $2, $3)', [i.tokenHash, deviceId, i.now]);
      if (code.used_at !== null) {
        // A retry by the device that used the code (its answer was lost): see SqliteStore.claim.
        const mine = code.device_id === null ? undefined : await one(c, 'SELECT * FROM devices WHERE id = $1 FOR NO KEY UPDATE', [code.device_id]);
        const retry =
          mine !== undefined &&
          mine.hardware_id === i.hardwareId &&
          (code.expires_at as number) > i.now &&
          (mine.last_seen_at === null || (mine.last_seen_at as number) < (code.used_at as number));
        if (!retry) return { ok: false, reason: 'used' };
        const deviceId = mine.id as string;
        await revokeTokens(deviceId);
        await insertToken(deviceId);
        return { ok: true, device: await deviceById(deviceId), reclaimed: true };
      }
      if ((code.expires_at as number) <= i.now) return { ok: false, reason: 'expired' };
      const elsewhere = await one(
        c,
        `SELECT d.id, s.name AS site_name FROM devices d JOIN sites s ON s.id = d.site_id
         WHERE d.hardware_id = $1 AND d.site_id <> $2 AND d.revoked_at IS NULL LIMIT 1`,
        [i.hardwareId, code.site_id],
      );
      if (elsewhere) return { ok: false, reason: 'other_site', site: elsewhere.site_name as string, deviceId: elsewhere.id as string };
      await run(c, 'UPDATE claim_codes SET used_at = $1 WHERE code_hash = $2', [i.now, i.codeHash]);
      const siteId = code.site_id as string;
      // Two codes of one site claimed at once by one hardware id: the insert's conflict makes
      // the second take the device the first created.
      const inserted = await run(
        c,
        `INSERT INTO devices (id, site_id, hardware_id, name, created_at, claimed_at) VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (site_id, hardware_id) DO NOTHING`,
        [i.newDeviceId, siteId, i.hardwareId, i.name ?? i.hardwareId, i.now],
      );
      let deviceId = i.newDeviceId;
      if (inserted === 0) {
        deviceId = (await one(c, 'SELECT id FROM devices WHERE site_id = $1 AND hardware_id = $2 FOR NO KEY UPDATE', [siteId, i.hardwareId]))!.id as string;
        await run(c, 'UPDATE devices SET name = coalesce($1, name), claimed_at = $2, revoked_at = NULL WHERE id = $3', [i.name ?? null, i.now, deviceId]);
        await revokeTokens(deviceId);
      }
      await run(c, 'UPDATE claim_codes SET device_id = $1 WHERE code_hash = $2', [deviceId, i.codeHash]);
      await insertToken(deviceId);
      return { ok: true, device: await deviceById(deviceId), reclaimed: inserted === 0 };
    });
  }

  async deviceForToken(tokenHash: string, now: number): Promise<DeviceRecord | null> {
    const row = await one(
      this.#pool,
      `SELECT ${DEVICE_COLUMNS} FROM device_tokens t JOIN devices d ON d.id = t.device_id JOIN sites s ON s.id = d.site_id
       WHERE t.token_hash = $1 AND t.revoked_at IS NULL`,
      [tokenHash],
    );
    if (!row) return null;
    const device = toDevice(row);
    if (device.lastSeenAt === null || device.lastSeenAt < now - LAST_SEEN_RESOLUTION_MS) {
      await run(this.#pool, 'UPDATE devices SET last_seen_at = greatest(coalesce(last_seen_at, 0), $1) WHERE id = $2', [now, device.id]);
      device.lastSeenAt = now;
    }
    return device;
  }

  async revokeDevice(deviceId: string, now: number): Promise<boolean> {
    return inTransaction(this.#pool, async (c) => {
      if ((await run(c, 'UPDATE devices SET revoked_at = $1 WHERE id = $2', [now, deviceId])) === 0) return false;
      await run(c, 'UPDATE device_tokens SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL', [now, deviceId]);
      return true;
    });
  }

  async listSites(): Promise<SiteRecord[]> {
    return (await all(this.#pool, 'SELECT * FROM sites ORDER BY name COLLATE "C"')).map(toSite);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (await all(this.#pool, `${DEVICE_SELECT} ORDER BY s.name COLLATE "C", d.name COLLATE "C"`)).map(toDevice);
  }

  async ensureCamera(deviceId: string, key: string, newCameraId: string, now: number): Promise<CameraRecord> {
    const found = await one(this.#pool, 'SELECT * FROM cameras WHERE device_id = $1 AND key = $2', [deviceId, key]);
    if (found) return toCamera(found);
    await run(this.#pool, 'INSERT INTO cameras (id, device_id, key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, key) DO NOTHING', [newCameraId, deviceId, key, now]);
    return toCamera((await one(this.#pool, 'SELECT * FROM cameras WHERE device_id = $1 AND key = $2', [deviceId, key]))!);
  }

  async getCamera(id: string, deviceId?: string): Promise<CameraRecord | null> {
    const row = await one(this.#pool, 'SELECT * FROM cameras WHERE id = $1 AND ($2::text IS NULL OR device_id = $2)', [id, deviceId ?? null]);
    return row ? toCamera(row) : null;
  }

  async listCameras(deviceId?: string): Promise<CameraWithStats[]> {
    const rows = await all(
      this.#pool,
      `SELECT c.*, count(f.id) AS frames, max(f.captured_at) AS last_captured_at, ${INVENTORY_COLUMNS}
       FROM cameras c LEFT JOIN frames f ON f.camera_id = c.id LEFT JOIN camera_inventory i ON i.camera_id = c.id
       WHERE $1::text IS NULL OR c.device_id = $1
       GROUP BY c.id, i.camera_id ORDER BY c.device_id COLLATE "C", c.key COLLATE "C"`,
      [deviceId ?? null],
    );
    return rows.map((r) => ({ ...toCamera(r), frames: r.frames as number, lastCapturedAt: (r.last_captured_at as number | null) ?? null, inventory: toInventory(r) }));
  }

  async findFrame(f: FrameIdentity): Promise<FrameRecord | null> {
    const row = await one(this.#pool, `SELECT ${FRAME_COLUMNS} FROM frames WHERE device_id = $1 AND camera_id = $2 AND captured_at = $3 AND variant = $4`, [
      f.deviceId,
      f.cameraId,
      f.capturedAt,
      f.variant,
    ]);
    return row ? toFrame(row) : null;
  }

  async getFrame(id: string, deviceId?: string): Promise<FrameRecord | null> {
    const row = await one(this.#pool, `SELECT ${FRAME_COLUMNS} FROM frames WHERE id = $1 AND ($2::text IS NULL OR device_id = $2)`, [id, deviceId ?? null]);
    return row ? toFrame(row) : null;
  }

  async listFrames(cameraId: string, o: ListFramesOptions): Promise<FrameRecord[]> {
    const rows = await all(
      this.#pool,
      `SELECT ${FRAME_COLUMNS} FROM frames
       WHERE camera_id = $1 AND ($2::bigint IS NULL OR captured_at < $2) AND ($3::text IS NULL OR variant = $3)
       ORDER BY captured_at DESC, variant LIMIT $4`,
      [cameraId, o.before ?? null, o.variant ?? null, o.limit],
    );
    return rows.map(toFrame);
  }

  async findPendingUpload(f: FrameIdentity, sha256: string, bytes: number): Promise<UploadRecord | null> {
    const row = await one(
      this.#pool,
      `SELECT * FROM uploads WHERE device_id = $1 AND camera_id = $2 AND captured_at = $3 AND variant = $4
       AND sha256 = $5 AND bytes = $6 AND completed_at IS NULL ORDER BY created_at DESC LIMIT 1`,
      [f.deviceId, f.cameraId, f.capturedAt, f.variant, sha256, bytes],
    );
    return row ? toUpload(row) : null;
  }

  async createUpload(u: Omit<UploadRecord, 'completedAt' | 'frameId'>): Promise<void> {
    await run(
      this.#pool,
      `INSERT INTO uploads (id, device_id, camera_id, captured_at, variant, bytes, sha256, dhash, object_key, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [u.id, u.deviceId, u.cameraId, u.capturedAt, u.variant, u.bytes, u.sha256, u.dhash, u.objectKey, u.createdAt],
    );
  }

  async getUpload(id: string, deviceId?: string): Promise<UploadRecord | null> {
    const row = await one(this.#pool, 'SELECT * FROM uploads WHERE id = $1 AND ($2::text IS NULL OR device_id = $2)', [id, deviceId ?? null]);
    return row ? toUpload(row) : null;
  }

  async completeUpload(uploadId: string, newFrameId: string, now: number): Promise<CompleteResult> {
    return inTransaction(this.#pool, async (c): Promise<CompleteResult> => {
      // Locked: a retried complete racing the first (another replica) waits, then sees it done.
      const u = toUpload((await one(c, 'SELECT * FROM uploads WHERE id = $1 FOR UPDATE', [uploadId]))!);
      const frameById = async (id: string) => toFrame((await one(c, `SELECT ${FRAME_COLUMNS} FROM frames WHERE id = $1`, [id]))!);
      if (u.frameId !== null) return { frame: await frameById(u.frameId), created: false };
      const inserted = await one(
        c,
        `INSERT INTO frames (${FRAME_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (device_id, camera_id, captured_at, variant) DO NOTHING RETURNING id`,
        [newFrameId, u.deviceId, u.cameraId, u.capturedAt, u.variant, u.bytes, u.sha256, u.dhash, u.objectKey, now],
      );
      const frame = toFrame(
        (await one(c, `SELECT ${FRAME_COLUMNS} FROM frames WHERE device_id = $1 AND camera_id = $2 AND captured_at = $3 AND variant = $4`, [
          u.deviceId,
          u.cameraId,
          u.capturedAt,
          u.variant,
        ]))!,
      );
      await run(c, 'UPDATE uploads SET completed_at = $1, frame_id = $2 WHERE id = $3', [now, frame.id, uploadId]);
      if (inserted && frame.variant === 'compressed') {
        await run(c, `INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES ('frame', $1, 'pending', $2, $2, $2) ON CONFLICT DO NOTHING`, [frame.id, now]);
      }
      return { frame, created: inserted !== undefined };
    });
  }

  async close(): Promise<void> {
    await this.#listener.close();
    await this.#pool.end();
  }
}

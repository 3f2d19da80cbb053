import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlertStore } from './alert-types.js';
import type { AnalysisStore } from './analysis-types.js';
import type { EventStore } from './event-types.js';
import type { FirmwareStore } from './firmware-types.js';
import type { FleetStore } from './fleet-types.js';
import type { InventoryStore } from './inventory-types.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteAlertStore } from './sqlite-alert-store.js';
import { SqliteAnalysisStore } from './sqlite-analysis-store.js';
import { SqliteEventStore } from './sqlite-event-store.js';
import { SqliteFirmwareStore } from './sqlite-firmware-store.js';
import { SqliteFleetStore } from './sqlite-fleet-store.js';
import { SqliteInventoryStore } from './sqlite-inventory-store.js';
import { SqliteLeaseStore } from './sqlite-lease-store.js';
import { SqliteUserStore } from './sqlite-user-store.js';
import type { UserStore } from './user-types.js';
import { DEVICE_COLUMNS, INVENTORY_COLUMNS, toCamera, toDevice, toFrame, toInventory, toSite, toUpload, type Row } from './sqlite-rows.js';
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


type Db = Database.Database;

/**
 * The embedded store: one SQLite file.
 *
 * journal_mode=WAL: readers (the CLI, the dashboard) never block the writer.
 * synchronous=FULL: a completed upload tells the agent it may delete its copy, so the commit
 * must survive a power cut; in WAL mode NORMAL could roll the last commits back.
 * busy_timeout: the CLI may write (claim codes, revocations) while the server runs.
 * Every transaction that writes is BEGIN IMMEDIATE, so two processes never deadlock upgrading
 * a read lock.
 */
export class SqliteStore implements CloudStore {
  readonly engine = 'sqlite' as const;
  readonly #db: Db;
  readonly #s;
  readonly fleet: FleetStore;
  readonly alerts: AlertStore;
  readonly inventory: InventoryStore;
  readonly firmware: FirmwareStore;
  readonly users: UserStore;
  readonly analysis: AnalysisStore;
  readonly events: EventStore;
  readonly leases: LeaseStore;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    // First: the CLI (claim-code, revoke) opens the database while the server runs, and even
    // switching to WAL must wait for the other's lock rather than fail with SQLITE_BUSY.
    this.#db.pragma('busy_timeout = 5000');
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('foreign_keys = ON');
    migrate(this.#db);
    this.#s = prepare(this.#db);
    this.fleet = new SqliteFleetStore(this.#db);
    const alerts = new SqliteAlertStore(this.#db);
    this.alerts = alerts;
    this.analysis = new SqliteAnalysisStore(this.#db, alerts);
    this.events = new SqliteEventStore(this.#db);
    this.inventory = new SqliteInventoryStore(this.#db);
    this.firmware = new SqliteFirmwareStore(this.#db);
    this.users = new SqliteUserStore(this.#db);
    this.leases = new SqliteLeaseStore(this.#db);
  }

  async createClaimCode(i: { siteName: string; newSiteId: string; codeHash: string; expiresAt: number; now: number }): Promise<SiteRecord> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        s.insertSite.run(i.newSiteId, i.siteName, i.now);
        const site = toSite(s.siteByName.get(i.siteName) as Row);
        s.insertClaimCode.run(i.codeHash, site.id, i.now, i.expiresAt);
        return site;
      })
      .immediate();
  }

  async claim(i: ClaimInput): Promise<ClaimResult> {
    const s = this.#s;
    return this.#db
      .transaction((): ClaimResult => {
        const code = s.claimCode.get(i.codeHash) as Row | undefined;
        if (!code) return { ok: false, reason: 'unknown' };
        if (code.used_at !== null) {
          // The device that used this code asks again: its answer was lost (a power cut or a
          // dropped line between our commit and its storing the token). It gets a new token,
          // the one it never stored is revoked, as long as the code has not expired and that
          // device has not been seen since the claim (last_seen_at is kept to the minute).
          const mine = code.device_id === null ? undefined : (s.deviceById.get(code.device_id) as Row | undefined);
          const retry =
            mine !== undefined &&
            mine.hardware_id === i.hardwareId &&
            (code.expires_at as number) > i.now &&
            (mine.last_seen_at === null || (mine.last_seen_at as number) < (code.used_at as number));
          if (!retry) return { ok: false, reason: 'used' };
          const deviceId = mine.id as string;
          s.revokeTokens.run(i.now, deviceId);
          s.insertToken.run(i.tokenHash, deviceId, i.now);
          return { ok: true, device: toDevice(s.deviceById.get(deviceId) as Row), reclaimed: true };
        }
        if ((code.expires_at as number) <= i.now) return { ok: false, reason: 'expired' };
        // A device moves to another site only once it is removed (revoked) where it is: a code
        // for another site must not take over a working device. Checked before the code is used.
        const elsewhere = s.activeDeviceElsewhere.get(i.hardwareId, code.site_id) as Row | undefined;
        if (elsewhere) return { ok: false, reason: 'other_site', site: elsewhere.site_name as string, deviceId: elsewhere.id as string };
        // The guard on used_at makes the code single-use even across processes.
        if (s.useClaimCode.run(i.now, i.codeHash).changes !== 1) return { ok: false, reason: 'used' };
        const siteId = code.site_id as string;
        const existing = s.deviceBySiteHardware.get(siteId, i.hardwareId) as Row | undefined;
        let deviceId: string;
        if (existing) {
          deviceId = existing.id as string;
          s.reclaimDevice.run(i.name ?? null, i.now, deviceId);
          s.revokeTokens.run(i.now, deviceId);
        } else {
          deviceId = i.newDeviceId;
          s.insertDevice.run(deviceId, siteId, i.hardwareId, i.name ?? i.hardwareId, i.now, i.now);
        }
        s.setClaimCodeDevice.run(deviceId, i.codeHash);
        s.insertToken.run(i.tokenHash, deviceId, i.now);
        return { ok: true, device: toDevice(s.deviceById.get(deviceId) as Row), reclaimed: existing !== undefined };
      })
      .immediate();
  }

  async deviceForToken(tokenHash: string, now: number): Promise<DeviceRecord | null> {
    const row = this.#s.deviceByToken.get(tokenHash) as Row | undefined;
    if (!row) return null;
    const device = toDevice(row);
    if (device.lastSeenAt === null || device.lastSeenAt < now - LAST_SEEN_RESOLUTION_MS) {
      this.#s.touchDevice.run(now, device.id);
      device.lastSeenAt = now;
    }
    return device;
  }

  async revokeDevice(deviceId: string, now: number): Promise<boolean> {
    const s = this.#s;
    return this.#db
      .transaction(() => {
        if (s.markDeviceRevoked.run(now, deviceId).changes === 0) return false;
        s.revokeTokens.run(now, deviceId);
        return true;
      })
      .immediate();
  }

  async listSites(): Promise<SiteRecord[]> {
    return (this.#s.sites.all() as Row[]).map(toSite);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.#s.devices.all() as Row[]).map(toDevice);
  }

  async ensureCamera(deviceId: string, key: string, newCameraId: string, now: number): Promise<CameraRecord> {
    const s = this.#s;
    const found = s.cameraByKey.get(deviceId, key) as Row | undefined;
    if (found) return toCamera(found);
    s.insertCamera.run(newCameraId, deviceId, key, now);
    return toCamera(s.cameraByKey.get(deviceId, key) as Row);
  }

  async getCamera(id: string, deviceId?: string): Promise<CameraRecord | null> {
    const row = this.#s.camera.get({ id, deviceId: deviceId ?? null }) as Row | undefined;
    return row ? toCamera(row) : null;
  }

  async listCameras(deviceId?: string): Promise<CameraWithStats[]> {
    return (this.#s.cameras.all({ deviceId: deviceId ?? null }) as Row[]).map((r) => ({
      ...toCamera(r),
      frames: r.frames as number,
      lastCapturedAt: (r.last_captured_at as number | null) ?? null,
      inventory: toInventory(r),
    }));
  }

  async findFrame(f: FrameIdentity): Promise<FrameRecord | null> {
    const row = this.#s.frameByIdentity.get(f.deviceId, f.cameraId, f.capturedAt, f.variant) as Row | undefined;
    return row ? toFrame(row) : null;
  }

  async getFrame(id: string, deviceId?: string): Promise<FrameRecord | null> {
    const row = this.#s.frame.get({ id, deviceId: deviceId ?? null }) as Row | undefined;
    return row ? toFrame(row) : null;
  }

  async listFrames(cameraId: string, o: ListFramesOptions): Promise<FrameRecord[]> {
    const rows = this.#s.frames.all({ cameraId, before: o.before ?? null, variant: o.variant ?? null, limit: o.limit }) as Row[];
    return rows.map(toFrame);
  }

  async findPendingUpload(f: FrameIdentity, sha256: string, bytes: number): Promise<UploadRecord | null> {
    const row = this.#s.pendingUpload.get(f.deviceId, f.cameraId, f.capturedAt, f.variant, sha256, bytes) as Row | undefined;
    return row ? toUpload(row) : null;
  }

  async createUpload(u: Omit<UploadRecord, 'completedAt' | 'frameId'>): Promise<void> {
    this.#s.insertUpload.run(u.id, u.deviceId, u.cameraId, u.capturedAt, u.variant, u.bytes, u.sha256, u.dhash, u.objectKey, u.createdAt);
  }

  async getUpload(id: string, deviceId?: string): Promise<UploadRecord | null> {
    const row = this.#s.upload.get({ id, deviceId: deviceId ?? null }) as Row | undefined;
    return row ? toUpload(row) : null;
  }

  async completeUpload(uploadId: string, newFrameId: string, now: number): Promise<CompleteResult> {
    const s = this.#s;
    return this.#db
      .transaction((): CompleteResult => {
        const u = toUpload(s.upload.get({ id: uploadId, deviceId: null }) as Row);
        if (u.frameId !== null) return { frame: toFrame(s.frame.get({ id: u.frameId, deviceId: null }) as Row), created: false };
        const inserted = s.insertFrame.run(newFrameId, u.deviceId, u.cameraId, u.capturedAt, u.variant, u.bytes, u.sha256, u.dhash, u.objectKey, now);
        const frame = toFrame(s.frameByIdentity.get(u.deviceId, u.cameraId, u.capturedAt, u.variant) as Row);
        s.markUploadCompleted.run(now, frame.id, uploadId);
        // The analysis job is part of the frame's record: accepted means queued for analysis.
        if (inserted.changes === 1 && frame.variant === 'compressed') s.insertFrameJob.run(frame.id, now, now, now);
        return { frame, created: inserted.changes === 1 };
      })
      .immediate();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

function migrate(db: Db): void {
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this cloud (${MIGRATIONS.length})`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

const FRAME_COLUMNS = 'id, device_id, camera_id, captured_at, variant, bytes, sha256, dhash, object_key, received_at';

/** Every statement, prepared once when the store opens. */
function prepare(db: Db) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertSite: p('INSERT INTO sites (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING'),
    siteByName: p('SELECT * FROM sites WHERE name = ?'),
    sites: p('SELECT * FROM sites ORDER BY name'),
    insertClaimCode: p('INSERT INTO claim_codes (code_hash, site_id, created_at, expires_at) VALUES (?, ?, ?, ?)'),
    claimCode: p('SELECT * FROM claim_codes WHERE code_hash = ?'),
    useClaimCode: p('UPDATE claim_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL'),
    setClaimCodeDevice: p('UPDATE claim_codes SET device_id = ? WHERE code_hash = ?'),
    deviceBySiteHardware: p('SELECT id FROM devices WHERE site_id = ? AND hardware_id = ?'),
    activeDeviceElsewhere: p(
      `SELECT d.id, s.name AS site_name FROM devices d JOIN sites s ON s.id = d.site_id
       WHERE d.hardware_id = ? AND d.site_id <> ? AND d.revoked_at IS NULL LIMIT 1`,
    ),
    deviceById: p(`SELECT ${DEVICE_COLUMNS} FROM devices d JOIN sites s ON s.id = d.site_id WHERE d.id = ?`),
    devices: p(`SELECT ${DEVICE_COLUMNS} FROM devices d JOIN sites s ON s.id = d.site_id ORDER BY s.name, d.name`),
    deviceByToken: p(
      `SELECT ${DEVICE_COLUMNS} FROM device_tokens t JOIN devices d ON d.id = t.device_id JOIN sites s ON s.id = d.site_id
       WHERE t.token_hash = ? AND t.revoked_at IS NULL`,
    ),
    insertDevice: p('INSERT INTO devices (id, site_id, hardware_id, name, created_at, claimed_at) VALUES (?, ?, ?, ?, ?, ?)'),
    reclaimDevice: p('UPDATE devices SET name = coalesce(?, name), claimed_at = ?, revoked_at = NULL WHERE id = ?'),
    touchDevice: p('UPDATE devices SET last_seen_at = ? WHERE id = ?'),
    markDeviceRevoked: p('UPDATE devices SET revoked_at = ? WHERE id = ?'),
    insertToken: p('INSERT INTO device_tokens (token_hash, device_id, created_at) VALUES (?, ?, ?)'),
    revokeTokens: p('UPDATE device_tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL'),
    cameraByKey: p('SELECT * FROM cameras WHERE device_id = ? AND key = ?'),
    insertCamera: p('INSERT INTO cameras (id, device_id, key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, key) DO NOTHING'),
    camera: p('SELECT * FROM cameras WHERE id = :id AND (:deviceId IS NULL OR device_id = :deviceId)'),
    cameras: p(
      `SELECT c.*, count(f.id) AS frames, max(f.captured_at) AS last_captured_at, ${INVENTORY_COLUMNS}
       FROM cameras c LEFT JOIN frames f ON f.camera_id = c.id LEFT JOIN camera_inventory i ON i.camera_id = c.id
       WHERE :deviceId IS NULL OR c.device_id = :deviceId
       GROUP BY c.id ORDER BY c.device_id, c.key`,
    ),
    frameByIdentity: p(`SELECT ${FRAME_COLUMNS} FROM frames WHERE device_id = ? AND camera_id = ? AND captured_at = ? AND variant = ?`),
    frame: p(`SELECT ${FRAME_COLUMNS} FROM frames WHERE id = :id AND (:deviceId IS NULL OR device_id = :deviceId)`),
    frames: p(
      `SELECT ${FRAME_COLUMNS} FROM frames
       WHERE camera_id = :cameraId AND (:before IS NULL OR captured_at < :before) AND (:variant IS NULL OR variant = :variant)
       ORDER BY captured_at DESC, variant LIMIT :limit`,
    ),
    // The frame identity is unique: a retried complete keeps the frame that is there.
    insertFrame: p(
      `INSERT INTO frames (${FRAME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id, camera_id, captured_at, variant) DO NOTHING`,
    ),
    insertUpload: p(
      `INSERT INTO uploads (id, device_id, camera_id, captured_at, variant, bytes, sha256, dhash, object_key, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertFrameJob: p(`INSERT INTO jobs (kind, ref, state, run_at, created_at, updated_at) VALUES ('frame', ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING`),
    upload: p('SELECT * FROM uploads WHERE id = :id AND (:deviceId IS NULL OR device_id = :deviceId)'),
    pendingUpload: p(
      `SELECT * FROM uploads WHERE device_id = ? AND camera_id = ? AND captured_at = ? AND variant = ?
       AND sha256 = ? AND bytes = ? AND completed_at IS NULL ORDER BY created_at DESC LIMIT 1`,
    ),
    markUploadCompleted: p('UPDATE uploads SET completed_at = ?, frame_id = ? WHERE id = ?'),
  };
}

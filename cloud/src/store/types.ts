import type { Variant } from '@vigil/protocol';
import type { AlertStore } from './alert-types.js';
import type { AnalysisStore } from './analysis-types.js';
import type { EventStore } from './event-types.js';
import type { FirmwareStore } from './firmware-types.js';
import type { FleetStore } from './fleet-types.js';
import type { CameraInventory, InventoryStore } from './inventory-types.js';
import type { UserStore } from './user-types.js';

// The cloud's persistence, as async methods so a PostgreSQL implementation can replace the
// embedded SQLite one without touching the routes. Times are Unix epoch milliseconds.
//
// Scope: reads take an optional device id. With it, records of other devices do not exist
// (the device API); without it, every record is visible (the admin API).

/** last_seen_at is written at most this often per device, not on every request (both stores). */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

export interface SiteRecord {
  id: string;
  name: string;
  createdAt: number;
}

export interface DeviceRecord {
  id: string;
  siteId: string;
  site: string;
  hardwareId: string;
  name: string;
  createdAt: number;
  claimedAt: number;
  lastSeenAt: number | null;
  /** Set when an admin revoked the device's tokens; cleared by a new claim. */
  revokedAt: number | null;
  /** When the device last sent its camera inventory; null if it never did. */
  inventoryReceivedAt: number | null;
}

export interface CameraRecord {
  id: string;
  deviceId: string;
  key: string;
  /** The name its device's inventory gives it; null until an inventory lists it. */
  name: string | null;
  createdAt: number;
}

export interface CameraWithStats extends CameraRecord {
  frames: number;
  lastCapturedAt: number | null;
  /** What the device's inventory says about it; null if no inventory ever listed it. */
  inventory: CameraInventory | null;
}

/** What identifies a frame: one capture of one camera in one variant. */
export interface FrameIdentity {
  deviceId: string;
  cameraId: string;
  capturedAt: number;
  variant: Variant;
}

export interface FrameRecord extends FrameIdentity {
  id: string;
  bytes: number;
  sha256: string;
  dhash: string;
  objectKey: string;
  receivedAt: number;
}

export interface UploadRecord extends FrameIdentity {
  id: string;
  bytes: number;
  sha256: string;
  dhash: string;
  objectKey: string;
  createdAt: number;
  completedAt: number | null;
  frameId: string | null;
}

export type ClaimResult =
  | { ok: true; device: DeviceRecord; reclaimed: boolean }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' }
  /** The device is claimed (not revoked) at another site: the code is left unused. */
  | { ok: false; reason: 'other_site'; site: string; deviceId: string };

export interface ClaimInput {
  codeHash: string;
  hardwareId: string;
  name: string | undefined;
  tokenHash: string;
  newDeviceId: string;
  now: number;
}

export interface CompleteResult {
  frame: FrameRecord;
  created: boolean;
}

export interface ListFramesOptions {
  limit: number;
  /** Only frames captured strictly before this time. */
  before?: number | undefined;
  variant?: Variant | undefined;
}

/**
 * Named leases for background work that must run in one process at a time when several cloud
 * replicas share the database (the fleet watch's sweep, the alert sweeps).
 */
export interface LeaseStore {
  /**
   * Takes the lease for `holder` until now + ttlMs, or renews it if `holder` has it; false while
   * another holder's lease is still running.
   */
  acquire(name: string, holder: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up (another replica may take it at once); a lease held by another is left. */
  release(name: string, holder: string): Promise<void>;
}

export interface CloudStore {
  /** Which engine this is, for logs and the status API. */
  readonly engine: 'sqlite' | 'postgres';
  /** Heartbeats, queue history and per-camera watch state (fleet-types.ts). */
  readonly fleet: FleetStore;
  /** Alerts and their notifications (alert-types.ts). */
  readonly alerts: AlertStore;
  /** Each device's camera inventory (inventory-types.ts). */
  readonly inventory: InventoryStore;
  /** Firmware releases, deployments and rollouts (firmware-types.ts). */
  readonly firmware: FirmwareStore;
  /** Dashboard users and their sessions (user-types.ts). */
  readonly users: UserStore;
  /** The analysis pipeline's jobs, state and settings (analysis-types.ts). */
  readonly analysis: AnalysisStore;
  /** Scene events and the live stream's log (event-types.ts). */
  readonly events: EventStore;
  /** Leases for work that runs once across replicas. */
  readonly leases: LeaseStore;
  /**
   * Calls `listener` after another process appended to the live stream (the shared engine's
   * notifications); the stream's own process is woken directly. Returns an unsubscribe.
   * Absent on the embedded store, which one process owns.
   */
  readonly watchStream?: (listener: () => void) => () => void;

  /** Finds the site by name or creates it, and records a claim code (by hash) for it. */
  createClaimCode(input: { siteName: string; newSiteId: string; codeHash: string; expiresAt: number; now: number }): Promise<SiteRecord>;
  /**
   * Exchanges a claim code for a device token, atomically: the code is marked used, the device
   * found (same site + hardware id) or created, its earlier tokens revoked and the new one
   * stored. Of two concurrent claims with one code exactly one succeeds.
   */
  claim(input: ClaimInput): Promise<ClaimResult>;
  /** The device holding this (unrevoked) token, or null. Notes when the device was last seen. */
  deviceForToken(tokenHash: string, now: number): Promise<DeviceRecord | null>;
  /** Revokes every token of the device; false if there is no such device. */
  revokeDevice(deviceId: string, now: number): Promise<boolean>;
  listSites(): Promise<SiteRecord[]>;
  listDevices(): Promise<DeviceRecord[]>;

  /** The device's camera with this key, created on first sight. */
  ensureCamera(deviceId: string, key: string, newCameraId: string, now: number): Promise<CameraRecord>;
  getCamera(id: string, deviceId?: string): Promise<CameraRecord | null>;
  listCameras(deviceId?: string): Promise<CameraWithStats[]>;

  findFrame(identity: FrameIdentity): Promise<FrameRecord | null>;
  getFrame(id: string, deviceId?: string): Promise<FrameRecord | null>;
  listFrames(cameraId: string, opts: ListFramesOptions): Promise<FrameRecord[]>;

  /** A not yet completed upload of exactly these bytes for this frame, to hand out again. */
  findPendingUpload(identity: FrameIdentity, sha256: string, bytes: number): Promise<UploadRecord | null>;
  createUpload(upload: Omit<UploadRecord, 'completedAt' | 'frameId'>): Promise<void>;
  getUpload(id: string, deviceId?: string): Promise<UploadRecord | null>;
  /**
   * Records the frame of a verified upload (insert-or-keep on the frame identity) and marks the
   * upload completed; a new compressed frame is queued for analysis in the same transaction.
   * Retrying returns the same frame with created=false.
   */
  completeUpload(uploadId: string, newFrameId: string, now: number): Promise<CompleteResult>;

  close(): Promise<void>;
}

import type { CameraState, HeartbeatRequest, LocalAccessView, Variant, Verdict } from '@vigil/protocol';
import type { CameraInventory } from './inventory-types.js';
import type { DeviceRecord } from './types.js';

// What the fleet watch keeps about devices and cameras: each device's latest heartbeat, a
// short history of queue depths, and per camera the state its device last reported, when a
// frame last arrived, and the current run of look-alike frames. Times are epoch ms.

/** The latest heartbeat of a device, summarised for lists (the full report is kept apart). */
export interface DeviceHealth {
  receivedAt: number;
  /** On the device's clock, which may be wrong (see the report's `clock`). */
  sentAt: number;
  verdict: Verdict;
  verdictReason: string | null;
  agentVersion: string;
  firmwareVersion: string | null;
  firmwareSlot: 'A' | 'B' | null;
  /** Captures waiting to upload, all cameras and variants. */
  queueDepth: number;
  oldestQueuedAgeMs: number | null;
  cameras: { total: number; ok: number; failing: number; stopped: number };
  /** The status page's address and setup PIN, as the latest heartbeat gave them. */
  local: LocalAccessView | null;
}

export interface FleetDevice {
  device: DeviceRecord;
  /** null until the device's first heartbeat. */
  health: DeviceHealth | null;
}

/** One heartbeat's queue, per variant (summed over cameras). */
export interface QueueSample {
  receivedAt: number;
  depth: Record<Variant, number>;
  oldestAgeMs: Record<Variant, number | null>;
}

/** A run of frames whose dHashes are all within the threshold of the run's first one. */
export interface FrozenRun {
  refDhash: string | null;
  count: number;
  /** Capture time of the newest frame counted; older frames arriving late are not counted. */
  lastCapturedAt: number | null;
}

export interface CameraWatch {
  cameraId: string;
  deviceId: string;
  key: string;
  name: string | null;
  createdAt: number;
  /** The camera as the device's latest heartbeat described it; null when it was not listed. */
  reported: { state: CameraState; name: string; lastError: string | null; lastCaptureAt: number | null; failures: number } | null;
  /** What the device's inventory says about it; null if no inventory ever listed it. */
  inventory: CameraInventory | null;
  /** When the cloud last received a frame of this camera (any variant). */
  lastFrameAt: number | null;
  frozen: FrozenRun;
}

export interface HeartbeatInput {
  deviceId: string;
  receivedAt: number;
  report: HeartbeatRequest;
  /** Keep this many heartbeats of history per device (older ones are deleted). */
  keepHistory: number;
  /** An id for a camera the device reports for the first time. */
  newCameraId: () => string;
}

export interface FleetStore {
  /**
   * Records a heartbeat in one transaction: the latest report, a history row (pruned to
   * `keepHistory`), the device's last-seen time, and each reported camera's state (creating
   * cameras seen for the first time; cameras not listed lose their reported state).
   */
  recordHeartbeat(input: HeartbeatInput): Promise<void>;
  /** Every device (or one) with its latest health. */
  fleetDevices(deviceId?: string): Promise<FleetDevice[]>;
  /** The full latest report, as received. */
  latestReport(deviceId: string): Promise<{ receivedAt: number; report: HeartbeatRequest } | null>;
  /** The device's last `limit` queue samples, oldest first. */
  queueHistory(deviceId: string, limit: number): Promise<QueueSample[]>;
  /** Cameras with their watch state, for one device or all. */
  cameraWatch(deviceId?: string): Promise<CameraWatch[]>;
  getCameraWatch(cameraId: string): Promise<CameraWatch | null>;
  /** Notes a frame's arrival and the camera's new look-alike run. */
  saveFrameWatch(cameraId: string, deviceId: string, lastFrameAt: number, frozen: FrozenRun): Promise<void>;
}

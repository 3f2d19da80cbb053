// The device-facing HTTP contract (/v1). Agent and cloud both import these types, so a
// change here is a change to the wire format and shows up in both type-checks.

export const API_PREFIX = '/v1';

export const VARIANTS = ['compressed', 'original'] as const;
export type Variant = (typeof VARIANTS)[number];

export function isVariant(v: unknown): v is Variant {
  return v === 'compressed' || v === 'original';
}

/** POST /v1/claim — exchanges a one-time claim code for a device token. */
export interface ClaimRequest {
  code: string;
  /** Stable hardware identity (board serial); a re-claimed device keeps its record. */
  hardwareId: string;
  name?: string;
}
export interface ClaimResponse {
  deviceId: string;
  siteId: string;
  site: string;
  token: string;
}

/** GET /v1/device — token check. */
export interface DeviceInfo {
  deviceId: string;
  siteId: string;
  site: string;
  name: string;
}

/** POST /v1/uploads/presign */
export interface PresignRequest {
  /** The agent's camera key (stable per device). */
  camera: string;
  /** Capture time, Unix epoch milliseconds. */
  capturedAt: number;
  variant: Variant;
  bytes: number;
  /** Lower-case hex SHA-256 of the JPEG. */
  sha256: string;
  /** Lower-case hex dHash (see dhash.ts). */
  dhash: string;
}
export type PresignResponse =
  | { status: 'upload'; uploadId: string; method: 'PUT'; url: string; headers: Record<string, string>; expiresAt: number }
  | { status: 'exists'; frameId: string };

/** POST /v1/uploads/complete */
export interface CompleteRequest {
  uploadId: string;
}
export interface CompleteResponse {
  frameId: string;
  /** false when this (device, camera, capturedAt, variant) was already recorded. */
  created: boolean;
}

export interface CameraSummary {
  id: string;
  key: string;
  name: string | null;
  frames: number;
  lastCapturedAt: number | null;
}

/** GET /v1/cameras/:id/frames */
export interface FrameSummary {
  id: string;
  cameraId: string;
  capturedAt: number;
  variant: Variant;
  bytes: number;
  sha256: string;
  dhash: string;
  receivedAt: number;
  /** Path of the image, relative to the cloud's base URL. */
  imageUrl: string;
}

/** Every error body the cloud sends. `code` is stable; `message` is for people. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

/** What the device says about itself in each heartbeat. */
export const VERDICTS = ['nominal', 'self_healed', 'rolled_back', 'needs_human'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** Why the device last started: read at agent start from what was recorded before it went down. */
export const REBOOT_REASONS = ['first_boot', 'planned', 'watchdog', 'power_loss', 'crash', 'unknown'] as const;
export type RebootReason = (typeof REBOOT_REASONS)[number];

export const CLOCK_STATES = ['synced', 'unsynced', 'unknown'] as const;
export type ClockState = (typeof CLOCK_STATES)[number];

export const CAMERA_STATES = ['ok', 'failing', 'stopped'] as const;
/** ok: a good capture within the expected time; failing: none; stopped: its worker is not running. */
export type CameraState = (typeof CAMERA_STATES)[number];

export interface CameraHealth {
  /** The agent's camera key, as in uploads. */
  camera: string;
  name: string;
  state: CameraState;
  /** Epoch ms of the last good capture, if any since the agent started. */
  lastCaptureAt: number | null;
  capturesOk: number;
  failures: number;
  /** Code and message of the last failure ("CAPTURE_TIMEOUT: ..."). */
  lastError: string | null;
}

export interface QueueHealth {
  camera: string;
  variant: Variant;
  depth: number;
  /** Age of the oldest queued capture, ms; null when empty. */
  oldestAgeMs: number | null;
}

/** One step of the escalation ladder, as recorded on the device. */
export interface EscalationStep {
  /** Epoch ms. */
  at: number;
  /** 1 restart a part, 2 restart the agent, 3 reboot, 4 roll back, 5 needs a human. */
  step: 1 | 2 | 3 | 4 | 5;
  /** The failing part, if one part failed ("uploads:cam1"). */
  part: string | null;
  reason: string;
}

/** A failed behavioural check ("uploader cam1/original: no step for 412 s"). */
export interface HealthProblem {
  check: string;
  part: string | null;
  reason: string;
}

/** POST /v1/heartbeat — every 60 s. Not queued: when one cannot be sent, the next carries the latest state. */
export interface HeartbeatRequest {
  /** Epoch ms on the device's clock (see `clock`). */
  sentAt: number;
  agentVersion: string;
  firmware: { version: string | null; slot: 'A' | 'B' | null; trial: boolean };
  /** Seconds since the device booted, and since the agent started. */
  uptimeS: number;
  agentUptimeS: number;
  lastReboot: { reason: RebootReason; detail: string | null };
  verdict: Verdict;
  /** Why the verdict is not nominal (what healed, what needs a technician). */
  verdictReason: string | null;
  problems: HealthProblem[];
  /** The most recent escalation steps, newest last. */
  escalation: EscalationStep[];
  cameras: CameraHealth[];
  queue: QueueHealth[];
  deadLetters: number;
  evictions: number;
  disk: { totalBytes: number; freeBytes: number } | null;
  memory: { rssBytes: number; heapUsedBytes: number };
  clock: ClockState;
  /** Recent log lines (JSON), only when the verdict is not nominal. */
  logs: string[];
  /** The latest firmware update and where it stands; null when there was none (or updates are
   * off). Optional: an agent from before updates does not send it. */
  update?: FirmwareUpdateView | null;
  /** Where a technician reaches the device on its LAN; null when its status page is off.
   * Optional: an agent from before the status page does not send it. */
  local?: LocalAccessView | null;
}

/** The device's status page on the LAN (docs/agent.md, "The status page") and its setup PIN,
 * which the dashboard shows to the people who may set the device up. */
export interface LocalAccessView {
  /** The mDNS name without ".local" (vigil-XXXX). */
  hostName: string;
  port: number;
  setupPin: string;
  /** The device's IPv4 addresses, for networks where mDNS does not reach. */
  addresses: string[];
}
/** One update as a heartbeat carries it (FirmwareStatusRequest without the deployment). */
export interface FirmwareUpdateView {
  releaseId: string;
  version: string;
  state: UpdateState;
  reason: string | null;
  /** Epoch ms on the device. */
  at: number;
}
export interface HeartbeatResponse {
  receivedAt: number;
}

/** How the agent reads a camera: its RTSP stream, or the ONVIF snapshot URI. */
export const CAPTURE_PATHS = ['rtsp', 'snapshot'] as const;
export type CapturePath = (typeof CAPTURE_PATHS)[number];

/** One camera in the agent's inventory. */
export interface CameraInventoryItem {
  /** The agent's stable camera key (as in uploads): from the MAC or serial, never the IP. */
  camera: string;
  name: string;
  /** 'onvif': found by discovery; 'config': typed into the agent's config. */
  source: 'onvif' | 'config';
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  serial: string | null;
  mac: string | null;
  /** Where it was last seen (host or host:port). */
  address: string | null;
  capturePath: CapturePath;
  /** false once discovery stopped finding it (its worker is stopped, its record kept). */
  present: boolean;
  /** A per-camera problem in words ("ONVIF_AUTH_FAILED: wrong password"), or null. */
  lastError: string | null;
  /** Epoch ms. */
  lastSeenAt: number | null;
}

/** PUT /v1/cameras/inventory — the agent's whole camera list, sent when it changes. */
export interface CameraInventoryRequest {
  cameras: CameraInventoryItem[];
}
export interface CameraInventoryResponse {
  receivedAt: number;
}

/** GET /v1/firmware/target — the firmware this device should run. Sent with an ETag; a request
 * with If-None-Match gets 304 while the answer is unchanged. */
export interface FirmwareTarget {
  /** null: no update for this device (stay on what runs). */
  release: { id: string; version: string; bytes: number; sha256: string; url: string } | null;
  /** The deployment that asks for it, to report progress against. */
  deploymentId: string | null;
}

export const UPDATE_STATES = ['downloading', 'installing', 'trial', 'committed', 'reverted', 'failed'] as const;
/** Where an update stands on the device; committed, reverted and failed are final. */
export type UpdateState = (typeof UPDATE_STATES)[number];

/** POST /v1/firmware/status — each step of an update and its outcome. */
export interface FirmwareStatusRequest {
  deploymentId: string | null;
  releaseId: string;
  version: string;
  state: UpdateState;
  /** Why it failed or was reverted ("no upload acknowledged within 600 s of the trial boot"). */
  reason: string | null;
  /** Epoch ms on the device. */
  at: number;
}

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

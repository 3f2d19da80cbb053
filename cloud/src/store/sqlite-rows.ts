import type { Variant } from '@vigil/protocol';
import type { CameraRecord, DeviceRecord, FrameRecord, SiteRecord, UploadRecord } from './types.js';

// Row → record mappers shared by the SQLite stores.

export type Row = Record<string, unknown>;

export const DEVICE_COLUMNS = 'd.*, s.name AS site';

export function toSite(r: Row): SiteRecord {
  return { id: r.id as string, name: r.name as string, createdAt: r.created_at as number };
}

export function toDevice(r: Row): DeviceRecord {
  return {
    id: r.id as string,
    siteId: r.site_id as string,
    site: r.site as string,
    hardwareId: r.hardware_id as string,
    name: r.name as string,
    createdAt: r.created_at as number,
    claimedAt: r.claimed_at as number,
    lastSeenAt: (r.last_seen_at as number | null) ?? null,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}

export function toCamera(r: Row): CameraRecord {
  return {
    id: r.id as string,
    deviceId: r.device_id as string,
    key: r.key as string,
    name: (r.name as string | null) ?? null,
    createdAt: r.created_at as number,
  };
}

export function toFrame(r: Row): FrameRecord {
  return {
    id: r.id as string,
    deviceId: r.device_id as string,
    cameraId: r.camera_id as string,
    capturedAt: r.captured_at as number,
    variant: r.variant as Variant,
    bytes: r.bytes as number,
    sha256: r.sha256 as string,
    dhash: r.dhash as string,
    objectKey: r.object_key as string,
    receivedAt: r.received_at as number,
  };
}

export function toUpload(r: Row): UploadRecord {
  return {
    id: r.id as string,
    deviceId: r.device_id as string,
    cameraId: r.camera_id as string,
    capturedAt: r.captured_at as number,
    variant: r.variant as Variant,
    bytes: r.bytes as number,
    sha256: r.sha256 as string,
    dhash: r.dhash as string,
    objectKey: r.object_key as string,
    createdAt: r.created_at as number,
    completedAt: (r.completed_at as number | null) ?? null,
    frameId: (r.frame_id as string | null) ?? null,
  };
}

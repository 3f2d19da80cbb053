import type { CapturePath, Variant } from '@vigil/protocol';
import type { CameraInventory } from './inventory-types.js';
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
    inventoryReceivedAt: (r.inventory_received_at as number | null) ?? null,
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

/** camera_inventory's columns as `i_…`, for a LEFT JOIN camera_inventory i (read by toInventory). */
export const INVENTORY_COLUMNS = [
  'name',
  'source',
  'manufacturer',
  'model',
  'firmware',
  'serial',
  'mac',
  'address',
  'capture_path',
  'present',
  'last_error',
  'last_seen_at',
  'received_at',
  'unlisted_at',
]
  .map((c) => `i.${c} AS i_${c}`)
  .join(', ');

/** The camera's inventory from INVENTORY_COLUMNS; null when no inventory ever listed it. */
export function toInventory(r: Row): CameraInventory | null {
  if (r.i_source === null || r.i_source === undefined) return null;
  const text = (v: unknown) => (v as string | null) ?? null;
  const unlistedAt = (r.i_unlisted_at as number | null) ?? null;
  return {
    name: r.i_name as string,
    source: r.i_source as CameraInventory['source'],
    manufacturer: text(r.i_manufacturer),
    model: text(r.i_model),
    firmware: text(r.i_firmware),
    serial: text(r.i_serial),
    mac: text(r.i_mac),
    address: text(r.i_address),
    capturePath: r.i_capture_path as CapturePath,
    present: r.i_present === 1,
    lastError: text(r.i_last_error),
    lastSeenAt: (r.i_last_seen_at as number | null) ?? null,
    listed: unlistedAt === null,
    receivedAt: r.i_received_at as number,
    unlistedAt,
  };
}

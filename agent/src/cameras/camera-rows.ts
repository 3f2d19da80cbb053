// The registry's rows: the cameras table's columns and their mapping to CameraRecord.
import type { CameraError, CameraRecord } from './types.js';

export interface Row {
  key: string;
  source: 'onvif' | 'config';
  name: string;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  serial: string | null;
  mac: string | null;
  endpoint: string | null;
  address: string | null;
  xaddr: string | null;
  stream_uri: string | null;
  snapshot_uri: string | null;
  present: number;
  missed_rounds: number;
  first_seen_at: number;
  last_seen_at: number;
  address_changed_at: number | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: number | null;
}

export const COLUMNS = [
  'key', 'source', 'name', 'manufacturer', 'model', 'firmware', 'serial', 'mac', 'endpoint', 'address', 'xaddr', 'stream_uri', 'snapshot_uri',
  'present', 'missed_rounds', 'first_seen_at', 'last_seen_at', 'address_changed_at', 'last_error_code', 'last_error_message', 'last_error_at',
] as const;

export function toRecord(r: Row): CameraRecord {
  const lastError: CameraError | null = r.last_error_code ? { code: r.last_error_code, message: r.last_error_message ?? '', at: r.last_error_at ?? r.last_seen_at } : null;
  return {
    key: r.key,
    source: r.source,
    name: r.name,
    manufacturer: r.manufacturer,
    model: r.model,
    firmware: r.firmware,
    serial: r.serial,
    mac: r.mac,
    address: r.address,
    xaddr: r.xaddr,
    streamUri: r.stream_uri,
    snapshotUri: r.snapshot_uri,
    present: r.present === 1,
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    lastError,
  };
}

export function fromRecord(c: CameraRecord): Row {
  return {
    key: c.key,
    source: c.source,
    name: c.name,
    manufacturer: c.manufacturer,
    model: c.model,
    firmware: c.firmware,
    serial: c.serial,
    mac: c.mac,
    endpoint: null,
    address: c.address,
    xaddr: c.xaddr,
    stream_uri: c.streamUri,
    snapshot_uri: c.snapshotUri,
    present: c.present ? 1 : 0,
    missed_rounds: 0,
    first_seen_at: c.firstSeenAt,
    last_seen_at: c.lastSeenAt,
    address_changed_at: null,
    last_error_code: c.lastError?.code ?? null,
    last_error_message: c.lastError?.message ?? null,
    last_error_at: c.lastError?.at ?? null,
  };
}

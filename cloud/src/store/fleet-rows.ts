import type { CameraState, HeartbeatRequest, LocalAccessView, Verdict } from '@vigil/protocol';
import type { CameraWatch, DeviceHealth, QueueSample } from './fleet-types.js';
import { toInventory, type Row } from './sqlite-rows.js';

// Row → record mappers and heartbeat arithmetic shared by the SQLite and PostgreSQL fleet
// stores (both read the same columns; PostgreSQL's BIGINTs arrive as numbers).

/** A heartbeat's queue summed per variant: total depth and the oldest capture's age. */
export function summariseQueue(r: HeartbeatRequest) {
  const q = { compressed: { depth: 0, oldest: null as number | null }, original: { depth: 0, oldest: null as number | null } };
  for (const e of r.queue) {
    q[e.variant].depth += e.depth;
    q[e.variant].oldest = maxOrNull(q[e.variant].oldest, e.oldestAgeMs);
  }
  return q;
}

export function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/**
 * device_health h's columns as `h_…` for toHealth. The status page's address and PIN have no
 * column of their own: `localJson` is the engine's expression for the stored report's `local`
 * as JSON text (SQL NULL when absent or null).
 */
export function healthColumns(localJson: string): string {
  return [
    'received_at',
    'sent_at',
    'verdict',
    'verdict_reason',
    'agent_version',
    'firmware_version',
    'firmware_slot',
    'queue_depth',
    'oldest_queued_ms',
    'cameras_total',
    'cameras_ok',
    'cameras_failing',
    'cameras_stopped',
  ]
    .map((c) => `h.${c} AS h_${c}`)
    .concat(`${localJson} AS h_local`)
    .join(', ');
}

/** The columns toWatch reads, less INVENTORY_COLUMNS (for cameras c LEFT JOIN camera_watch w). */
export const WATCH_COLUMNS = `c.id, c.device_id, c.key, c.name, c.created_at, w.reported_state, w.reported_name, w.reported_error,
  w.reported_capture_at, w.reported_failures, w.last_frame_at, w.frozen_ref_dhash, w.frozen_count, w.frozen_last_captured_at`;

export function toHealth(r: Row): DeviceHealth | null {
  if (r.h_received_at === null || r.h_received_at === undefined) return null;
  return {
    receivedAt: r.h_received_at as number,
    sentAt: r.h_sent_at as number,
    verdict: r.h_verdict as Verdict,
    verdictReason: (r.h_verdict_reason as string | null) ?? null,
    agentVersion: r.h_agent_version as string,
    firmwareVersion: (r.h_firmware_version as string | null) ?? null,
    firmwareSlot: (r.h_firmware_slot as 'A' | 'B' | null) ?? null,
    queueDepth: r.h_queue_depth as number,
    oldestQueuedAgeMs: (r.h_oldest_queued_ms as number | null) ?? null,
    cameras: {
      total: r.h_cameras_total as number,
      ok: r.h_cameras_ok as number,
      failing: r.h_cameras_failing as number,
      stopped: r.h_cameras_stopped as number,
    },
    local: typeof r.h_local === 'string' ? (JSON.parse(r.h_local) as LocalAccessView) : null,
  };
}

export function toWatch(r: Row): CameraWatch {
  const state = (r.reported_state as CameraState | null) ?? null;
  return {
    cameraId: r.id as string,
    deviceId: r.device_id as string,
    key: r.key as string,
    name: (r.name as string | null) ?? null,
    createdAt: r.created_at as number,
    reported:
      state === null
        ? null
        : {
            state,
            name: (r.reported_name as string | null) ?? '',
            lastError: (r.reported_error as string | null) ?? null,
            lastCaptureAt: (r.reported_capture_at as number | null) ?? null,
            failures: (r.reported_failures as number | null) ?? 0,
          },
    inventory: toInventory(r),
    lastFrameAt: (r.last_frame_at as number | null) ?? null,
    frozen: {
      refDhash: (r.frozen_ref_dhash as string | null) ?? null,
      count: (r.frozen_count as number | null) ?? 0,
      lastCapturedAt: (r.frozen_last_captured_at as number | null) ?? null,
    },
  };
}

/** A `heartbeats` row as a queue sample. */
export function toQueueSample(r: Row): QueueSample {
  return {
    receivedAt: r.received_at as number,
    depth: { compressed: r.compressed_depth as number, original: r.original_depth as number },
    oldestAgeMs: { compressed: (r.compressed_oldest_ms as number | null) ?? null, original: (r.original_oldest_ms as number | null) ?? null },
  };
}

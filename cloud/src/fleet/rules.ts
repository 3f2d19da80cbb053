import { hammingDistance, VARIANTS, type HeartbeatRequest, type Variant } from '@vigil/protocol';
import type { CameraWatch, FleetDevice, FrozenRun, QueueSample } from '../store/fleet-types.js';

// The fleet watch's rules, as pure functions of what the store knows and the time: each says,
// for one (kind, camera) of one device, whether an alert should be open, be closed, or be left
// as it is (null). fleet-watch.ts reads the state, asks these, and applies the answers.

export const FLEET_ALERT_KINDS = ['device_silent', 'camera_offline', 'camera_frozen', 'backlog_growing', 'needs_human'] as const;
export type FleetAlertKind = (typeof FLEET_ALERT_KINDS)[number];

export interface FleetThresholds {
  deviceSilentMs: number;
  cameraSilentMs: number;
  frozenFrames: number;
  frozenMaxDistance: number;
  backlogHeartbeats: number;
  backlogMinAgeMs: number;
}

export type Decision =
  | { action: 'open'; kind: FleetAlertKind; cameraId: string | null; title: string; detail: Record<string, unknown> }
  | { action: 'close'; kind: FleetAlertKind; cameraId: string | null; resolution: string };

/**
 * device_silent: no heartbeat for longer than the threshold. Silence is counted from the last
 * heartbeat, the claim, or `watchingSince` (when this cloud started), whichever is latest: a
 * device cannot be blamed for the minutes the cloud itself was down.
 */
export function silentDecision(fd: FleetDevice, now: number, watchingSince: number, t: FleetThresholds): Decision {
  const last = fd.health?.receivedAt ?? null;
  const since = Math.max(last ?? 0, fd.device.claimedAt, watchingSince);
  const silentForMs = now - since;
  if (silentForMs > t.deviceSilentMs) {
    return {
      action: 'open',
      kind: 'device_silent',
      cameraId: null,
      title: `No heartbeat from ${fd.device.name} (${fd.device.site}) for ${duration(silentForMs)}`,
      detail: { lastHeartbeatAt: last, silentForMs, thresholdMs: t.deviceSilentMs },
    };
  }
  return { action: 'close', kind: 'device_silent', cameraId: null, resolution: 'heartbeat received' };
}

/** needs_human: the device says it has run out of ways to heal itself. */
export function needsHumanDecision(deviceName: string, r: HeartbeatRequest): Decision {
  if (r.verdict === 'needs_human') {
    return {
      action: 'open',
      kind: 'needs_human',
      cameraId: null,
      title: `${deviceName} needs a technician: ${r.verdictReason ?? 'no reason given'}`,
      detail: {
        verdictReason: r.verdictReason,
        problems: r.problems,
        escalation: r.escalation,
        logs: r.logs,
        lastReboot: r.lastReboot,
        firmware: r.firmware,
        agentVersion: r.agentVersion,
      },
    };
  }
  return { action: 'close', kind: 'needs_human', cameraId: null, resolution: `the verdict is now ${r.verdict}` };
}

/** The variants whose queue grew strictly over the last `k` samples, with an old enough head. */
export function growingVariants(samples: readonly QueueSample[], k: number, minAgeMs: number): Variant[] {
  if (samples.length < k) return [];
  const last = samples.slice(-k);
  return VARIANTS.filter((v) => {
    for (let i = 1; i < last.length; i++) if (last[i]!.depth[v] <= last[i - 1]!.depth[v]) return false;
    return (last[last.length - 1]!.oldestAgeMs[v] ?? 0) >= minAgeMs;
  });
}

/**
 * backlog_growing: opens when a variant's queue grew over the last k heartbeats and its oldest
 * capture is old; closes only when the backlog shrinks (no variant grew since the previous
 * heartbeat and one shrank, or the queue is empty). A queue that merely stops growing keeps
 * the alert open: stuck is not recovered.
 */
export function backlogDecision(deviceName: string, samples: readonly QueueSample[], t: FleetThresholds): Decision | null {
  const growing = growingVariants(samples, t.backlogHeartbeats, t.backlogMinAgeMs);
  const latest = samples[samples.length - 1];
  if (latest && growing.length > 0) {
    const depth = VARIANTS.reduce((n, v) => n + latest.depth[v], 0);
    const oldest = Math.max(...growing.map((v) => latest.oldestAgeMs[v] ?? 0));
    return {
      action: 'open',
      kind: 'backlog_growing',
      cameraId: null,
      title: `Upload backlog growing on ${deviceName}: ${depth} queued, oldest ${duration(oldest)}`,
      detail: {
        variants: growing,
        depths: samples.slice(-t.backlogHeartbeats).map((s) => ({ at: s.receivedAt, ...s.depth })),
        oldestAgeMs: latest.oldestAgeMs,
      },
    };
  }
  const previous = samples[samples.length - 2];
  if (!latest || !previous) return null;
  const noneGrew = VARIANTS.every((v) => latest.depth[v] <= previous.depth[v]);
  const shrank = VARIANTS.some((v) => latest.depth[v] < previous.depth[v]);
  const empty = VARIANTS.every((v) => latest.depth[v] === 0);
  if ((noneGrew && shrank) || empty) return { action: 'close', kind: 'backlog_growing', cameraId: null, resolution: 'the backlog is shrinking' };
  return null;
}

/**
 * camera_offline: the device's inventory still lists the camera but says discovery no longer
 * finds it (present: false; the agent then stops its worker, so a heartbeat's "ok" for it can
 * only be older news); or, for a camera the device's latest heartbeat lists, the device reports
 * it not ok, or no frame of it has arrived for longer than the threshold (counted at the latest
 * from `watchingSince`). A camera the device lists in neither is left alone (null).
 */
export function cameraOfflineDecision(deviceName: string, cam: CameraWatch, now: number, watchingSince: number, t: FleetThresholds): Decision | null {
  const base = { kind: 'camera_offline', cameraId: cam.cameraId } as const;
  const label = cameraLabel(cam);
  const inv = cam.inventory;
  if (inv !== null && inv.listed && !inv.present) {
    return {
      ...base,
      action: 'open',
      title: `Camera ${label} on ${deviceName} is missing: the device no longer finds it${inv.address ? ` (last seen at ${inv.address})` : ''}`,
      detail: {
        reason: 'missing',
        lastSeenAt: inv.lastSeenAt,
        address: inv.address,
        lastError: inv.lastError,
        state: cam.reported?.state ?? null,
      },
    };
  }
  if (cam.reported === null) return null;
  if (cam.reported.state !== 'ok') {
    const { state, lastError, lastCaptureAt, failures } = cam.reported;
    return {
      ...base,
      action: 'open',
      title: `Camera ${label} on ${deviceName} is ${state}${lastError ? `: ${lastError}` : ''}`,
      detail: { reason: 'reported', state, lastError, lastCaptureAt, failures },
    };
  }
  const silentForMs = now - Math.max(cam.lastFrameAt ?? cam.createdAt, watchingSince);
  if (silentForMs > t.cameraSilentMs) {
    return {
      ...base,
      action: 'open',
      title: `No frames from camera ${label} on ${deviceName} for ${duration(silentForMs)}`,
      detail: { reason: 'no_frames', lastFrameAt: cam.lastFrameAt, silentForMs, thresholdMs: t.cameraSilentMs },
    };
  }
  return { ...base, action: 'close', resolution: 'the camera reports ok and its frames arrive' };
}

/**
 * The camera's look-alike run after this compressed frame: one longer when the frame is within
 * `maxDistance` bits of the run's first frame, else a new run starting at this frame. Null for
 * a frame captured before the newest one counted (a late retry): it changes nothing.
 */
export function nextFrozenRun(run: FrozenRun, frame: { capturedAt: number; dhash: string }, maxDistance: number): FrozenRun | null {
  if (run.lastCapturedAt !== null && frame.capturedAt <= run.lastCapturedAt) return null;
  const same = run.refDhash !== null && run.refDhash.length === frame.dhash.length && hammingDistance(run.refDhash, frame.dhash) <= maxDistance;
  return same
    ? { refDhash: run.refDhash, count: run.count + 1, lastCapturedAt: frame.capturedAt }
    : { refDhash: frame.dhash, count: 1, lastCapturedAt: frame.capturedAt };
}

/** camera_frozen: opens at `frozenFrames` look-alikes in a row; closes when a frame differs. */
export function frozenDecision(deviceName: string, cam: CameraWatch, run: FrozenRun, t: FleetThresholds): Decision | null {
  const base = { kind: 'camera_frozen', cameraId: cam.cameraId } as const;
  if (run.count >= t.frozenFrames) {
    return {
      ...base,
      action: 'open',
      title: `Camera ${cameraLabel(cam)} on ${deviceName} shows the same picture (${run.count} frames in a row)`,
      detail: { frames: run.count, maxDistance: t.frozenMaxDistance, lastCapturedAt: run.lastCapturedAt },
    };
  }
  if (run.count === 1) return { ...base, action: 'close', resolution: 'a frame differs' };
  return null;
}

export function cameraLabel(cam: CameraWatch): string {
  return cam.name || cam.reported?.name || cam.key;
}

/** "45 s", "5 min", "2 h 5 min", "3 d 4 h" — for titles people read. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

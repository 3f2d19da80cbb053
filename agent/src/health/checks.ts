// The HealthMonitor's behavioural checks, as pure functions of two snapshots (the previous and
// the current check). Liveness is what the parts do, not whether they exist: a camera worker
// whose ticks stopped, an uploader whose next pass is overdue, a subtree whose supervisor gave
// up, a loop that runs late, memory that is too big, CPU burnt while nothing moves.
//
// Each finding names its remedy. Only the agent's own faults climb the escalation ladder; a
// camera that is unplugged, a cloud that is down, a disk that fills or a clock not yet synced
// are reported (heartbeat, cloud alerts) — restarting or rebooting would not fix them.
import type { CameraState, ClockState, QueueHealth, Variant } from '@vigil/protocol';
import type { Finding } from './escalation.js';
import type { DiskSpace } from './system-facts.js';

export interface CameraSnapshot {
  id: string;
  name: string;
  intervalMs: number;
  captureTimeoutMs: number;
  /** The worker is running in the supervision tree. */
  alive: boolean;
  ticks: number;
  capturesOk: number;
  failures: number;
  /** A capture in flight started at (monotonic), if one is. */
  inFlightSince: number | null;
  lastSuccessAt: number | null;
  /** Wall-clock time of the last good capture. */
  lastCaptureAt: number | null;
  lastError: string | null;
}

export interface UploaderSnapshot {
  camera: string;
  variant: Variant;
  alive: boolean;
  uploaded: number;
  stepStartedAt: number | null;
  nextStepAt: number | null;
}

export interface Snapshot {
  /** Monotonic ms. */
  at: number;
  /** Since the agent started (monotonic ms). */
  agentUptimeMs: number;
  cameras: CameraSnapshot[];
  uploaders: UploaderSnapshot[];
  /** Subtrees whose supervisor gave up and that nobody restarted yet. */
  failedParts: { path: string; reason: string }[];
  queue: QueueHealth[];
  loopLagMaxMs: number;
  /** Process CPU time (user + system), cumulative ms. */
  cpuMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  disk: DiskSpace | null;
  clock: ClockState;
}

export interface CheckLimits {
  maxLoopLagMs: number;
  maxRssBytes: number;
  maxIdleCpu: number;
  minFreeDiskBytes: number;
  cameraFailingIntervals: number;
  /** Longest an uploader pass may take (its requests and their timeouts). */
  maxUploadStepMs: number;
  /** A queued capture older than this is reported (the cloud alerts a growing backlog). */
  maxQueueAgeMs: number;
  /** Slack for a late timer before an overdue tick or pass counts as a hang. */
  livenessGraceMs: number;
}

/** Slack for a late timer before an overdue pass counts as a hang (real time). */
export const LIVENESS_GRACE_MS = 60_000;
/** A camera worker ticks every interval; this many missed in a row is a hang. */
export const MISSED_TICKS = 3;
/** Memory growth is reported when RSS has grown by this factor and at least... */
export const MEMORY_GROWTH_FACTOR = 1.5;
/** ...this many bytes over the remembered window. */
export const MEMORY_GROWTH_MIN_BYTES = 64 * 1024 ** 2;

const mb = (b: number): string => `${Math.round(b / 1024 ** 2)} MB`;
const s = (ms: number): string => `${Math.round(ms / 1000)} s`;

/** When each camera's tick count last changed (kept by the monitor across checks). */
export type TickMemory = Map<string, { ticks: number; since: number }>;

export function cameraState(c: CameraSnapshot, limits: CheckLimits, s: Pick<Snapshot, 'at' | 'agentUptimeMs'>): CameraState {
  if (!c.alive) return 'stopped';
  const allowed = limits.cameraFailingIntervals * c.intervalMs + c.captureTimeoutMs;
  if (c.lastSuccessAt === null) return s.agentUptimeMs > allowed ? 'failing' : 'ok';
  return s.at - c.lastSuccessAt > allowed ? 'failing' : 'ok';
}

export function checkCameras(cur: Snapshot, ticks: TickMemory, limits: CheckLimits): Finding[] {
  const out: Finding[] = [];
  for (const c of cur.cameras) {
    const seen = ticks.get(c.id);
    if (!seen || seen.ticks !== c.ticks || !c.alive) ticks.set(c.id, { ticks: c.ticks, since: cur.at });
    if (!c.alive) continue;
    const part = `camera:${c.id}`;
    const still = cur.at - (ticks.get(c.id)?.since ?? cur.at);
    if (still > MISSED_TICKS * c.intervalMs + limits.livenessGraceMs) {
      out.push({ check: 'camera_worker', part, reason: `camera ${c.id}: no tick for ${s(still)} (every ${s(c.intervalMs)} expected)`, remedy: 'restart_agent' });
      continue;
    }
    if (c.inFlightSince !== null && cur.at - c.inFlightSince > c.captureTimeoutMs + MISSED_TICKS * c.intervalMs + limits.livenessGraceMs) {
      out.push({ check: 'camera_worker', part, reason: `camera ${c.id}: one capture running for ${s(cur.at - c.inFlightSince)} despite its ${s(c.captureTimeoutMs)} timeout`, remedy: 'restart_agent' });
      continue;
    }
    if (cameraState(c, limits, cur) === 'failing') {
      const since = c.lastSuccessAt === null ? 'since the agent started' : `for ${s(cur.at - c.lastSuccessAt)}`;
      out.push({ check: 'camera', part, reason: `camera ${c.id}: no good capture ${since}${c.lastError ? ` (${c.lastError})` : ''}`, remedy: 'report' });
    }
  }
  return out;
}

/** Uploader liveness, checked whether or not anything waits in the queue. */
export function checkUploaders(cur: Snapshot, limits: CheckLimits): Finding[] {
  const out: Finding[] = [];
  for (const u of cur.uploaders) {
    if (!u.alive) continue;
    const part = `uploader:${u.camera}/${u.variant}`;
    if (u.stepStartedAt !== null && cur.at - u.stepStartedAt > limits.maxUploadStepMs + limits.livenessGraceMs) {
      out.push({ check: 'uploader', part, reason: `uploader ${u.camera}/${u.variant}: one pass running for ${s(cur.at - u.stepStartedAt)}`, remedy: 'restart_agent' });
    } else if (u.nextStepAt !== null && cur.at - u.nextStepAt > limits.livenessGraceMs) {
      out.push({ check: 'uploader', part, reason: `uploader ${u.camera}/${u.variant}: its next pass is ${s(cur.at - u.nextStepAt)} overdue`, remedy: 'restart_agent' });
    }
  }
  return out;
}

/** The oldest queued capture per variant: uploads that do not keep up, for whatever reason. */
export function checkQueue(cur: Snapshot, limits: CheckLimits): Finding[] {
  const out: Finding[] = [];
  for (const variant of ['compressed', 'original'] as const) {
    const rows = cur.queue.filter((q) => q.variant === variant && q.oldestAgeMs !== null);
    const oldest = Math.max(0, ...rows.map((q) => q.oldestAgeMs!));
    if (oldest > limits.maxQueueAgeMs) {
      const depth = rows.reduce((n, q) => n + q.depth, 0);
      out.push({ check: 'queue', part: null, reason: `${depth} ${variant} captures queued, the oldest ${s(oldest)} old`, remedy: 'report' });
    }
  }
  return out;
}

export function checkSupervision(cur: Snapshot): Finding[] {
  return cur.failedParts.map((p) => ({ check: 'supervision', part: p.path, reason: p.reason, remedy: 'restart_part' as const }));
}

/**
 * Process-wide health. `prev` is the previous check (null on the first): lag must be over its
 * limit in two checks in a row (one long GC or checkpoint is not a fault), and CPU is judged
 * over the period between the two.
 */
export function checkProcess(prev: Snapshot | null, cur: Snapshot, limits: CheckLimits, rssHistory: number[]): Finding[] {
  const out: Finding[] = [];
  if (cur.loopLagMaxMs > limits.maxLoopLagMs) {
    const twice = prev !== null && prev.loopLagMaxMs > limits.maxLoopLagMs;
    out.push({ check: 'event_loop', part: null, reason: `event loop ran up to ${s(cur.loopLagMaxMs)} late`, remedy: twice ? 'restart_agent' : 'report' });
  }
  if (cur.rssBytes > limits.maxRssBytes) {
    out.push({ check: 'memory', part: null, reason: `resident memory ${mb(cur.rssBytes)} is over its ${mb(limits.maxRssBytes)} limit`, remedy: 'restart_agent' });
  } else {
    const first = rssHistory[0];
    if (first !== undefined && cur.rssBytes > first * MEMORY_GROWTH_FACTOR && cur.rssBytes - first > MEMORY_GROWTH_MIN_BYTES) {
      out.push({ check: 'memory', part: null, reason: `resident memory grew from ${mb(first)} to ${mb(cur.rssBytes)}`, remedy: 'report' });
    }
  }
  if (prev !== null && cur.at > prev.at) {
    const share = (cur.cpuMs - prev.cpuMs) / (cur.at - prev.at);
    if (share > limits.maxIdleCpu && progress(cur) === progress(prev)) {
      out.push({
        check: 'cpu',
        part: null,
        reason: `${Math.round(share * 100)} % CPU for ${s(cur.at - prev.at)} while no capture and no upload moved`,
        remedy: 'restart_agent',
      });
    }
  }
  if (cur.disk && cur.disk.freeBytes < limits.minFreeDiskBytes) {
    out.push({ check: 'disk', part: null, reason: `${mb(cur.disk.freeBytes)} free on the data disk`, remedy: 'report' });
  }
  if (cur.clock === 'unsynced') out.push({ check: 'clock', part: null, reason: 'the clock is not synchronised (NTP)', remedy: 'report' });
  return out;
}

/** Work finished: captures taken or failed, uploads acknowledged (ticks alone are not work). */
function progress(s: Snapshot): number {
  let n = 0;
  for (const c of s.cameras) n += c.capturesOk + c.failures;
  for (const u of s.uploaders) n += u.uploaded;
  return n;
}

import type { HeartbeatRequest } from '@vigil/protocol';
import type { Logger } from 'pino';
import type { AlertService } from '../alerts/alert-service.js';
import type { Clock } from '../lib/clock.js';
import { KeyedSerial } from '../lib/serial.js';
import type { AlertRecord } from '../store/alert-types.js';
import type { CameraWatch, FleetDevice } from '../store/fleet-types.js';
import type { CloudStore, DeviceRecord, FrameRecord } from '../store/types.js';
import {
  backlogDecision,
  cameraOfflineDecision,
  FLEET_ALERT_KINDS,
  frozenDecision,
  needsHumanDecision,
  nextFrozenRun,
  silentDecision,
  type Decision,
  type FleetThresholds,
} from './rules.js';

export interface FleetWatchOptions {
  store: CloudStore;
  alerts: AlertService;
  thresholds: FleetThresholds;
  sweepIntervalMs: number;
  /** This process among the replicas sharing the database: the sweep runs in one at a time. */
  instance: string;
  clock: Clock;
  logger: Logger;
  /** Called with every fleet alert this watch opens (triage). */
  onOpened?: (alert: AlertRecord) => void;
}

export interface SweepResult {
  devices: number;
  opened: number;
  closed: number;
}

export interface FleetWatchStatus {
  lastSweepAt: number | null;
  /** When a sweep last went through every device without an error. */
  lastSweepOkAt: number | null;
  lastError: string | null;
}

const FLEET_KINDS: ReadonlySet<string> = new Set(FLEET_ALERT_KINDS);
/** The sweep's own turn: one sweep at a time. */
const SWEEP_KEY = '\0sweep';
export const FLEET_SWEEP_LEASE = 'fleet-sweep';
/** A lease outlives its renewal time by this much, for a slow sweep or a busy database. */
const LEASE_SLACK_MS = 5_000;

/**
 * Watches the fleet and keeps its alerts in step with what devices report:
 * - on each heartbeat, that device's alerts (silence over, needs_human, backlog, cameras);
 * - on each new frame, that camera's frozen run (and an offline camera coming back);
 * - on each camera inventory, that device's cameras (one it stopped finding is offline);
 * - every sweep interval, what only time reveals: silent devices, cameras without frames, and
 *   revoked devices (whose open alerts close: nobody can act on them, and a re-claim starts
 *   afresh).
 * Evaluations of one device run one at a time (KeyedSerial), so a sweep and a heartbeat never
 * decide from two snapshots at once; other devices' run side by side. The sweep reads the whole
 * fleet at once and, where that would change an alert, decides again from that device's
 * records as they are then, in its turn. Across several cloud processes that is not enough; the
 * store's one-open-alert index then keeps duplicates out, and a stale decision is undone by the
 * next.
 */
export class FleetWatch {
  readonly #o: FleetWatchOptions;
  readonly #serial = new KeyedSerial();
  /** Silence is not counted from before this cloud started (see rules.silentDecision). */
  readonly #watchingSince: number;
  readonly #status: FleetWatchStatus = { lastSweepAt: null, lastSweepOkAt: null, lastError: null };

  constructor(o: FleetWatchOptions) {
    this.#o = o;
    this.#watchingSince = o.clock.now();
  }

  status(): FleetWatchStatus {
    return { ...this.#status };
  }

  /** One pass over the fleet. Tests call this directly. */
  sweep(): Promise<SweepResult> {
    return this.#serial.run(SWEEP_KEY, () => this.#sweep());
  }

  /** After a heartbeat was stored. */
  onHeartbeat(deviceId: string, report: HeartbeatRequest): Promise<void> {
    return this.#serial.run(deviceId, async () => {
      const fd = await this.#device(deviceId);
      if (!fd) return;
      const { store } = this.#o;
      const t = this.#o.thresholds;
      const now = this.#o.clock.now();
      const [open, cameras, history] = await Promise.all([
        store.alerts.openAlerts(deviceId),
        store.fleet.cameraWatch(deviceId),
        store.fleet.queueHistory(deviceId, t.backlogHeartbeats),
      ]);
      const decisions: (Decision | null)[] = [
        silentDecision(fd, now, this.#watchingSince, t),
        needsHumanDecision(fd.device.name, report),
        backlogDecision(fd.device.name, history, t),
        ...cameras.map((c) => cameraOfflineDecision(fd.device.name, c, now, this.#watchingSince, t)),
      ];
      await this.#apply(fd.device, decisions, open);
    });
  }

  /** After a camera inventory was stored: a camera the device stopped finding is offline at once. */
  onInventory(deviceId: string): Promise<void> {
    return this.#serial.run(deviceId, async () => {
      const fd = await this.#device(deviceId);
      if (!fd) return;
      const { store } = this.#o;
      const t = this.#o.thresholds;
      const now = this.#o.clock.now();
      // As in the sweep: a silent device's camera states are stale, so its cameras are left be.
      if (silentDecision(fd, now, this.#watchingSince, t).action === 'open') return;
      const [open, cameras] = await Promise.all([store.alerts.openAlerts(deviceId), store.fleet.cameraWatch(deviceId)]);
      await this.#apply(
        fd.device,
        cameras.map((c) => cameraOfflineDecision(fd.device.name, c, now, this.#watchingSince, t)),
        open,
      );
    });
  }

  /** After an upload completed with a new frame. */
  onFrame(frame: FrameRecord): Promise<void> {
    return this.#serial.run(frame.deviceId, async () => {
      const { store } = this.#o;
      const t = this.#o.thresholds;
      const cam = await store.fleet.getCameraWatch(frame.cameraId);
      if (!cam) return;
      // Only the compressed variant counts for freezing: the original is the same picture.
      const run = frame.variant === 'compressed' ? nextFrozenRun(cam.frozen, frame, t.frozenMaxDistance) : null;
      await store.fleet.saveFrameWatch(cam.cameraId, cam.deviceId, frame.receivedAt, run ?? cam.frozen);
      const fd = await this.#device(frame.deviceId);
      if (!fd) return;
      const updated: CameraWatch = { ...cam, lastFrameAt: Math.max(cam.lastFrameAt ?? 0, frame.receivedAt), frozen: run ?? cam.frozen };
      const offline = cameraOfflineDecision(fd.device.name, updated, this.#o.clock.now(), this.#watchingSince, t);
      const decisions = [
        run ? frozenDecision(fd.device.name, updated, run, t) : null,
        // A frame can show that a camera came back; whether it is down is the heartbeat's to say.
        offline?.action === 'close' ? offline : null,
      ];
      await this.#apply(fd.device, decisions, await store.alerts.openAlerts(frame.deviceId));
    });
  }

  /** After an admin revoked the device: its alerts close now rather than at the next sweep. */
  onRevoked(deviceId: string): Promise<void> {
    return this.#serial.run(deviceId, async () => {
      for (const a of await this.#o.store.alerts.openAlerts(deviceId)) await this.#o.alerts.close(a.id, 'device revoked');
    });
  }

  /**
   * Sweeps every interval until `signal` aborts, while this process holds the sweep's lease:
   * with several replicas one sweeps, and another takes over within two intervals of its
   * death (at once when it stops cleanly and gives the lease up).
   */
  async run(signal: AbortSignal): Promise<void> {
    const { store, clock, instance, sweepIntervalMs, logger } = this.#o;
    while (!signal.aborted) {
      try {
        if (await store.leases.acquire(FLEET_SWEEP_LEASE, instance, clock.now(), 2 * sweepIntervalMs + LEASE_SLACK_MS)) await this.sweep();
      } catch (err) {
        logger.error({ err }, 'fleet sweep failed');
      }
      await clock.sleep(sweepIntervalMs, signal);
    }
    await store.leases.release(FLEET_SWEEP_LEASE, instance).catch((err: unknown) => logger.warn({ err }, 'could not give up the fleet sweep lease'));
  }

  async #sweep(): Promise<SweepResult> {
    const { store } = this.#o;
    const now = this.#o.clock.now();
    this.#status.lastSweepAt = now;
    const [devices, open, cameras] = await Promise.all([store.fleet.fleetDevices(), store.alerts.openAlerts(), store.fleet.cameraWatch()]);
    const openBy = groupBy(open, (a) => a.deviceId);
    const camerasBy = groupBy(cameras, (c) => c.deviceId);
    const result: SweepResult = { devices: devices.length, opened: 0, closed: 0 };
    let failed: unknown;
    for (const fd of devices) {
      const id = fd.device.id;
      try {
        if (!this.#wouldChange(this.#sweepDecisions(fd, camerasBy.get(id) ?? [], now), openBy.get(id) ?? [])) continue;
        // Something changes: decide again from the device's records as they are now, in its turn.
        const r = await this.#serial.run(id, async () => {
          const [fresh] = await store.fleet.fleetDevices(id);
          if (!fresh) return { opened: 0, closed: 0 };
          const [mine, cams] = await Promise.all([store.alerts.openAlerts(id), store.fleet.cameraWatch(id)]);
          return this.#settle(fresh.device, this.#sweepDecisions(fresh, cams, now), mine);
        });
        result.opened += r.opened;
        result.closed += r.closed;
      } catch (err) {
        failed = err;
        this.#o.logger.error({ err, deviceId: id }, 'fleet sweep: device failed');
      }
    }
    if (failed === undefined) {
      this.#status.lastSweepOkAt = now;
      this.#status.lastError = null;
    } else {
      this.#status.lastError = (failed as Error).message ?? String(failed);
    }
    return result;
  }

  async #device(deviceId: string): Promise<FleetDevice | null> {
    const fd = (await this.#o.store.fleet.fleetDevices(deviceId))[0];
    // A revoked device gets no new alerts (the sweep closes its old ones).
    return fd && fd.device.revokedAt === null ? fd : null;
  }

  /** What a sweep decides for one device; null for a revoked one, whose alerts all close. */
  #sweepDecisions(fd: FleetDevice, cameras: CameraWatch[], now: number): (Decision | null)[] | null {
    if (fd.device.revokedAt !== null) return null;
    const t = this.#o.thresholds;
    const silent = silentDecision(fd, now, this.#watchingSince, t);
    const decisions: (Decision | null)[] = [silent];
    // A silent device's camera states are as old as its last heartbeat: leave them be.
    if (silent.action === 'close') for (const c of cameras) decisions.push(cameraOfflineDecision(fd.device.name, c, now, this.#watchingSince, t));
    return decisions;
  }

  #wouldChange(decisions: (Decision | null)[] | null, open: AlertRecord[]): boolean {
    if (decisions === null) return open.length > 0;
    return decisions.some((d) => d !== null && (d.action === 'open') === (existingFor(d, open) === undefined));
  }

  async #settle(device: DeviceRecord, decisions: (Decision | null)[] | null, open: AlertRecord[]): Promise<{ opened: number; closed: number }> {
    if (decisions !== null) return this.#apply(device, decisions, open);
    let closed = 0;
    for (const a of open) if (await this.#o.alerts.close(a.id, 'device revoked')) closed++;
    return { opened: 0, closed };
  }

  async #apply(device: DeviceRecord, decisions: (Decision | null)[], open: AlertRecord[]): Promise<{ opened: number; closed: number }> {
    let opened = 0;
    let closed = 0;
    for (const d of decisions) {
      if (!d) continue;
      const existing = existingFor(d, open);
      if (d.action === 'open' && !existing) {
        const r = await this.#o.alerts.open({ kind: d.kind, deviceId: device.id, cameraId: d.cameraId, title: d.title, detail: d.detail });
        if (r.created) {
          opened++;
          this.#o.onOpened?.(r.alert);
        }
      } else if (d.action === 'close' && existing) {
        if (await this.#o.alerts.close(existing.id, d.resolution)) closed++;
      }
    }
    return { opened, closed };
  }
}

/** The open fleet alert a decision is about, if any. */
function existingFor(d: Decision, open: AlertRecord[]): AlertRecord | undefined {
  return open.find((a) => FLEET_KINDS.has(a.kind) && a.kind === d.kind && a.cameraId === d.cameraId);
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return m;
}

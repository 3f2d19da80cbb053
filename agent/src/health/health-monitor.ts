// The HealthMonitor: every `intervalMs` it takes a snapshot of what the agent's parts did,
// runs the behavioural checks (checks.ts), hands what it found to the escalation ladder and
// carries out the step it answers. It also tells the watchdog feeder whether to feed: not once
// a reboot was decided, and not when the monitor itself stopped checking (a hung agent).
import type { CameraHealth, ClockState, HealthProblem, QueueHealth } from '@vigil/protocol';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { cameraState, checkCameras, checkProcess, checkQueue, checkSupervision, checkUploaders, type CameraSnapshot, type CheckLimits, type Snapshot, type TickMemory, type UploaderSnapshot } from './checks.js';
import type { Action, Escalation, Finding } from './escalation.js';
import type { DiskSpace } from './system-facts.js';

/** RSS samples remembered for the growth check (one per check: 30 min at the default interval). */
export const RSS_HISTORY = 30;
/** After a reboot was decided, how long to wait for the reset before restarting the agent instead. */
export const REBOOT_GRACE_MS = 120_000;
/** The feeder stops when the last check is older than this many intervals. */
export const MISSED_CHECKS = 3;

export interface HealthReport {
  /** Monotonic ms. */
  at: number;
  findings: Finding[];
  problems: HealthProblem[];
  cameras: CameraHealth[];
  queue: QueueHealth[];
  disk: DiskSpace | null;
  memory: { rssBytes: number; heapUsedBytes: number };
  clock: ClockState;
  loopLagMaxMs: number;
}

/** What the agent's parts are doing, read from the supervision tree and the parts themselves. */
export interface PartsView {
  cameras(): CameraSnapshot[];
  uploaders(): UploaderSnapshot[];
  failedParts(): { path: string; reason: string }[];
}

/** The steps of the ladder, carried out by the agent. */
export interface HealthActions {
  /** Step 1: start a subtree whose supervisor gave up again; false when it cannot be found. */
  restartPart(path: string): boolean;
  /** Step 2: stop and exit, so init starts the agent again. */
  restartAgent(reason: string): void;
  /** Step 3: stop feeding the watchdog, so the board resets. */
  reboot(reason: string): void;
  /** Step 4: boot the previous firmware slot. */
  rollBack(reason: string): Promise<void>;
}

export interface ProcessUsage {
  cpuMs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

export function processUsage(): ProcessUsage {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return { cpuMs: (cpu.user + cpu.system) / 1000, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}

export interface HealthMonitorOptions {
  clock: Clock;
  log: Logger;
  intervalMs: number;
  limits: CheckLimits;
  parts: PartsView;
  queue: () => QueueHealth[];
  loop: { sample(): { lagMaxMs: number } };
  disk: () => Promise<DiskSpace | null>;
  clockState: () => Promise<ClockState>;
  escalation: Escalation;
  actions: HealthActions;
  /** Other parts' own time-based checks (discovery), reported when they fail. */
  reports?: () => Finding[];
  usage?: () => ProcessUsage;
}

export class HealthMonitor {
  readonly #started: number;
  #prev: Snapshot | null = null;
  #latest: HealthReport | null = null;
  readonly #ticks: TickMemory = new Map();
  readonly #rss: number[] = [];
  #rebootAt: number | null = null;

  constructor(private readonly o: HealthMonitorOptions) {
    this.#started = o.clock.monotonic();
  }

  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.o.clock.sleep(this.o.intervalMs, signal);
      if (signal.aborted) return;
      await this.check();
    }
  }

  /** The latest report (for the heartbeat); null before the first check. */
  latest(): HealthReport | null {
    return this.#latest;
  }

  /** Whether the watchdog may be fed: checks keep running and no reboot was decided. */
  okToFeed(): boolean {
    if (this.#rebootAt !== null) return false;
    const last = this.#latest?.at ?? this.#started;
    return this.o.clock.monotonic() - last <= MISSED_CHECKS * this.o.intervalMs;
  }

  /** One round: snapshot, checks, escalation. */
  async check(): Promise<HealthReport> {
    const { o } = this;
    const snap = await this.snapshot();
    const findings = [
      ...checkSupervision(snap),
      ...checkCameras(snap, this.#ticks, o.limits),
      ...checkUploaders(snap, o.limits),
      ...checkQueue(snap, o.limits),
      ...checkProcess(this.#prev, snap, o.limits, this.#rss),
      ...(o.reports?.() ?? []),
    ];
    this.#rss.push(snap.rssBytes);
    if (this.#rss.length > RSS_HISTORY) this.#rss.shift();
    this.#prev = snap;
    const report: HealthReport = {
      at: snap.at,
      findings,
      problems: findings.map(({ check, part, reason }) => ({ check, part, reason })),
      cameras: snap.cameras.map((c) => ({
        camera: c.id,
        name: c.name,
        state: cameraState(c, o.limits, snap),
        lastCaptureAt: c.lastCaptureAt,
        capturesOk: c.capturesOk,
        failures: c.failures,
        lastError: c.lastError,
      })),
      queue: snap.queue,
      disk: snap.disk,
      memory: { rssBytes: snap.rssBytes, heapUsedBytes: snap.heapUsedBytes },
      clock: snap.clock,
      loopLagMaxMs: snap.loopLagMaxMs,
    };
    this.#latest = report;
    if (findings.length > 0) o.log.warn({ problems: report.problems }, 'health check found problems');
    else o.log.debug('health check passed');
    if (this.#rebootAt !== null) {
      if (snap.at - this.#rebootAt > REBOOT_GRACE_MS) {
        o.actions.restartAgent(`the board did not reset within ${REBOOT_GRACE_MS / 1000} s of the reboot step`);
      }
      return report;
    }
    for (const action of o.escalation.decide(findings)) await this.take(action);
    return report;
  }

  private async take(a: Action): Promise<void> {
    const { actions, log } = this.o;
    switch (a.step) {
      case 1:
        if (!actions.restartPart(a.part)) log.error({ part: a.part }, 'part to restart not found');
        return;
      case 2:
        actions.restartAgent(a.reason);
        return;
      case 3:
        this.#rebootAt = this.o.clock.monotonic();
        actions.reboot(a.reason);
        return;
      case 4:
        await actions.rollBack(a.reason);
    }
  }

  private async snapshot(): Promise<Snapshot> {
    const { o } = this;
    const [disk, clock] = await Promise.all([o.disk(), o.clockState()]);
    const usage = (o.usage ?? processUsage)();
    const at = o.clock.monotonic();
    return {
      at,
      agentUptimeMs: at - this.#started,
      cameras: o.parts.cameras(),
      uploaders: o.parts.uploaders(),
      failedParts: o.parts.failedParts(),
      queue: o.queue(),
      loopLagMaxMs: o.loop.sample().lagMaxMs,
      ...usage,
      disk,
      clock,
    };
  }
}

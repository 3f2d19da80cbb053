// The heartbeat: every `intervalMs` the device tells the cloud how it is — firmware and slot,
// uptime, how it last went down, per-camera state, queue, dead letters, evictions, disk,
// memory, clock and the verdict, with recent log lines when something is wrong. Heartbeats are
// never queued: one that cannot be sent is dropped, and the next carries the latest state.
import type { CameraHealth, FirmwareUpdateView, HeartbeatRequest, LocalAccessView, HeartbeatResponse, RebootReason } from '@vigil/protocol';
import type { CloudClient } from '../cloud/cloud-client.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { Waker } from '../lib/waker.js';
import type { Escalation } from './escalation.js';
import type { HealthReport } from './health-monitor.js';
import type { FirmwareInfo } from './system-facts.js';

/** Log lines sent along when the verdict is not nominal or a check found something. */
export const HEARTBEAT_LOG_LINES = 50;

export interface HeartbeatSources {
  agentVersion: string;
  firmware: () => FirmwareInfo;
  lastReboot: () => { reason: RebootReason; detail: string | null };
  uptimeS: () => number;
  report: () => HealthReport | null;
  /** Cameras known but not captured (a wrong password, not found any more), with why. */
  uncaptured: () => CameraHealth[];
  escalation: Escalation;
  counters: () => Record<string, number>;
  deadLetters: () => number;
  logs: (n: number) => string[];
  /** The latest firmware update and where it stands; null without one. */
  update?: () => FirmwareUpdateView | null;
  /** The status page's address and setup PIN; null while it is off. */
  local?: () => LocalAccessView | null;
}

export interface HeartbeatOptions {
  client: CloudClient;
  clock: Clock;
  log: Logger;
  intervalMs: number;
  sources: HeartbeatSources;
}

export interface HeartbeatStatus {
  sent: number;
  failed: number;
  /** Monotonic time of the last heartbeat the cloud acknowledged. */
  lastSentAt: number | null;
  lastError: string | null;
}

export class Heartbeat {
  readonly status: HeartbeatStatus = { sent: 0, failed: 0, lastSentAt: null, lastError: null };
  readonly #started: number;
  readonly #waker: Waker;

  constructor(private readonly o: HeartbeatOptions) {
    this.#started = o.clock.monotonic();
    this.#waker = new Waker(o.clock);
  }

  /** Send one now (a new token: the cloud should hear of this device at once). */
  wake(): void {
    this.#waker.wake();
  }

  async start(signal: AbortSignal): Promise<void> {
    // The first one goes out at once: it carries why the device (re)started.
    while (!signal.aborted) {
      await this.send(signal);
      await this.#waker.wait(this.o.intervalMs, signal);
    }
  }

  build(): HeartbeatRequest {
    const { clock } = this.o;
    const s = this.o.sources;
    const report = s.report();
    const { verdict, reason } = s.escalation.verdict();
    const counters = s.counters();
    const evictions = Object.entries(counters)
      .filter(([k]) => k.startsWith('evicted_') || k === 'captures_dropped_budget')
      .reduce((n, [, v]) => n + v, 0);
    const fw = s.firmware();
    const problems = report?.problems ?? [];
    return {
      sentAt: clock.now(),
      agentVersion: s.agentVersion,
      firmware: { version: fw.version, slot: fw.slot, trial: fw.trial },
      uptimeS: Math.round(s.uptimeS()),
      agentUptimeS: Math.round((clock.monotonic() - this.#started) / 1000),
      lastReboot: s.lastReboot(),
      verdict,
      verdictReason: reason,
      problems,
      escalation: s.escalation.steps(),
      cameras: [...(report?.cameras ?? []), ...s.uncaptured()],
      queue: report?.queue ?? [],
      deadLetters: s.deadLetters(),
      evictions,
      disk: report?.disk ?? null,
      memory: report?.memory ?? { rssBytes: process.memoryUsage().rss, heapUsedBytes: process.memoryUsage().heapUsed },
      clock: report?.clock ?? 'unknown',
      logs: verdict !== 'nominal' || problems.length > 0 ? s.logs(HEARTBEAT_LOG_LINES) : [],
      update: s.update?.() ?? null,
      local: s.local?.() ?? null,
    };
  }

  async send(signal?: AbortSignal): Promise<boolean> {
    const { client, clock, log } = this.o;
    try {
      await client.call<HeartbeatResponse>('POST', '/v1/heartbeat', this.build(), signal ? { signal } : {});
    } catch (err) {
      if (signal?.aborted) return false;
      const message = err instanceof Error ? err.message : String(err);
      // Said once per outage, not once a minute.
      if (this.status.lastError === null) log.warn({ err: message }, 'heartbeat not sent; the next one carries the latest state');
      this.status.failed++;
      this.status.lastError = message;
      return false;
    }
    if (this.status.lastError !== null) log.info({ failed: this.status.failed }, 'heartbeat sent again');
    this.status.sent++;
    this.status.lastSentAt = clock.monotonic();
    this.status.lastError = null;
    return true;
  }
}

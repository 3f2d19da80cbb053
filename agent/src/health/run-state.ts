// How the agent and the device last went down, for the heartbeat's `lastReboot` and the
// escalation ledger. A marker in the kv (SQLite on /data, synchronous=FULL: it survives the
// power cut it is meant to diagnose) says what this run is doing: 'running' while it runs, then
// how it ended. The next start reads it together with the kernel's boot id:
//
//   same boot      → the agent restarted: planned / crash / restart (step 2) / reboot asked
//                    but not yet done; still 'running' means it was killed (SIGKILL, OOM)
//   another boot   → the device rebooted: 'reboot' (step 3) → watchdog, 'planned' → planned
//                    (a clean shutdown stops the agent first), 'crash' → crash, 'running' →
//                    power_loss, unless the watchdog's bootstatus says it reset the card
//   nothing stored → first_boot

import { readFileSync, rmSync } from 'node:fs';
import type { RebootReason } from '@vigil/protocol';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Kv } from '../store/kv.js';

export type ExitReason = 'planned' | 'crash' | 'restart' | 'reboot' | 'killed';

export interface LastReboot {
  reason: RebootReason;
  detail: string | null;
}

export interface LastExit {
  reason: ExitReason;
  detail: string | null;
  /** Epoch ms the marker was written (for 'killed': when the killed run started). */
  at: number;
}

export interface RunStart {
  /** Why this boot happened; the same for every agent start within one boot. */
  lastReboot: LastReboot;
  /** How the previous agent run ended; null when there was none. */
  lastExit: LastExit | null;
  /** True for the first agent start of this boot (also on a first boot). */
  rebooted: boolean;
}

/** The exit code after an uncaught exception or unhandled rejection (sysexits' EX_SOFTWARE). */
export const EXIT_CRASH = 70;

export const RUN_STATE_KEY = 'run_state';
export const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';
export const UPTIME_PATH = '/proc/uptime';
/** Details are for people reading a heartbeat, not for stack traces. */
const DETAIL_MAX_CHARS = 500;

type MarkerState = 'running' | 'planned' | 'crash' | 'restart' | 'reboot';

interface Stored {
  v: 1;
  /** The boot the marker and lastReboot belong to. */
  bootId: string;
  lastReboot: LastReboot;
  marker: { state: MarkerState; detail: string | null; at: number };
}

export interface RunStateOptions {
  kv: Kv;
  clock: Clock;
  bootIdPath?: string;
  uptimePath?: string;
  /** /sys/class/watchdog/watchdog0/bootstatus: non-zero when the watchdog reset the card. */
  watchdogBootstatusPath?: string;
  /** Where the firmware's watchdog keeper leaves its reason when it lets the board reset. */
  resetNotePath?: string;
}

export class RunState {
  readonly #o: RunStateOptions;
  readonly #bootIdPath: string;
  readonly #uptimePath: string;
  #current: Stored | undefined;
  #start: RunStart | undefined;

  constructor(o: RunStateOptions) {
    this.#o = o;
    this.#bootIdPath = o.bootIdPath ?? BOOT_ID_PATH;
    this.#uptimePath = o.uptimePath ?? UPTIME_PATH;
  }

  /** Reads how the last run and boot ended, and marks this run 'running'. Once per process; later calls return the same answer. */
  begin(): RunStart {
    // Once per process: a second call would read this run's own 'running' marker
    if (this.#start) return this.#start;
    const bootId = this.#bootId();
    const prev = this.#load();
    let start: RunStart;
    if (prev === 'corrupt') {
      start = { lastReboot: { reason: 'unknown', detail: 'the recorded run state was unreadable' }, lastExit: null, rebooted: true };
    } else if (!prev) {
      start = { lastReboot: { reason: 'first_boot', detail: null }, lastExit: null, rebooted: true };
    } else if (prev.bootId === bootId) {
      start = { lastReboot: prev.lastReboot, lastExit: lastExit(prev, false), rebooted: false };
    } else {
      // The keeper's note speaks of the reset that ended the previous boot: read it once, always.
      start = { lastReboot: this.#rebootReason(prev, this.#takeResetNote()), lastExit: lastExit(prev, true), rebooted: true };
    }
    this.#start = start;
    this.#current = { v: 1, bootId, lastReboot: start.lastReboot, marker: { state: 'running', detail: null, at: this.#o.clock.now() } };
    this.#save();
    return start;
  }

  /** The agent stops because it was asked to (SIGTERM from init or a technician; `detail`: why, e.g. an update's reboot). */
  markPlannedStop(detail: string | null = null): void {
    this.#mark('planned', detail);
  }

  /** An uncaught error ends the agent; init restarts it. */
  markCrash(detail: string): void {
    this.#mark('crash', detail);
  }

  /** Escalation step 2: the agent exits so init restarts it. */
  markRestart(reason: string): void {
    this.#mark('restart', reason);
  }

  /** Escalation step 3: the watchdog is no longer fed; the next boot reports 'watchdog'. */
  markReboot(reason: string): void {
    this.#mark('reboot', reason);
  }

  /** Whole seconds since the device booted; 0 if /proc/uptime cannot be read. */
  uptimeS(): number {
    try {
      const s = Number(readFileSync(this.#uptimePath, 'utf8').trim().split(/\s+/)[0]);
      return Number.isFinite(s) && s >= 0 ? Math.floor(s) : 0;
    } catch {
      return 0;
    }
  }

  #mark(state: MarkerState, detail: string | null): void {
    // A crash before begin() still keeps this boot's reboot reason: begin() computes it first.
    if (!this.#current) this.begin();
    this.#current!.marker = { state, detail: detail === null ? null : clip(detail), at: this.#o.clock.now() };
    this.#save();
  }

  #rebootReason(prev: Stored, note: string | null): LastReboot {
    const m = prev.marker;
    switch (m.state) {
      case 'reboot':
        return { reason: 'watchdog', detail: m.detail };
      case 'planned':
        return { reason: 'planned', detail: m.detail };
      case 'crash':
        return { reason: 'crash', detail: m.detail };
      case 'running':
      case 'restart': {
        // The agent was up (or on its way back up): the device went down under it
        if (note) return { reason: 'watchdog', detail: `the watchdog keeper reset the board: ${note}` };
        const status = this.#bootstatus();
        if (status) return { reason: 'watchdog', detail: `the watchdog reset the card (bootstatus ${status})` };
        return { reason: 'power_loss', detail: null };
      }
      default:
        return { reason: 'unknown', detail: `unknown marker ${String(m.state)}` };
    }
  }

  /** The keeper's note (then removed: it speaks of this one reset), or null. */
  #takeResetNote(): string | null {
    const path = this.#o.resetNotePath;
    if (!path) return null;
    try {
      const note = readFileSync(path, 'utf8').trim();
      rmSync(path, { force: true });
      return note || null;
    } catch {
      return null;
    }
  }

  /** The watchdog driver's bootstatus when non-zero, else null (absent, unreadable, or 0). */
  #bootstatus(): string | null {
    const path = this.#o.watchdogBootstatusPath;
    if (!path) return null;
    try {
      const raw = readFileSync(path, 'utf8').trim();
      const n = Number(raw);
      return Number.isInteger(n) && n !== 0 ? raw : null;
    } catch {
      return null;
    }
  }

  /** The kernel's id for this boot; '' where there is none (then every start is the same boot). */
  #bootId(): string {
    try {
      return readFileSync(this.#bootIdPath, 'utf8').trim();
    } catch {
      return '';
    }
  }

  #load(): Stored | undefined | 'corrupt' {
    const raw = this.#o.kv.get(RUN_STATE_KEY);
    if (!raw) return undefined;
    try {
      const s = JSON.parse(raw.toString('utf8')) as Partial<Stored>;
      if (s.v !== 1 || typeof s.bootId !== 'string' || !s.lastReboot || !s.marker) return 'corrupt';
      return s as Stored;
    } catch {
      return 'corrupt';
    }
  }

  #save(): void {
    this.#o.kv.set(RUN_STATE_KEY, Buffer.from(JSON.stringify(this.#current)), this.#o.clock.now());
  }
}

function lastExit(prev: Stored, otherBoot: boolean): LastExit {
  const m = prev.marker;
  if (m.state === 'running') {
    const detail = otherBoot ? 'the device went down while the agent ran' : 'ended without a word (SIGKILL or out of memory)';
    return { reason: 'killed', detail, at: m.at };
  }
  return { reason: m.state, detail: m.detail, at: m.at };
}

function clip(s: string): string {
  return s.length > DETAIL_MAX_CHARS ? `${s.slice(0, DETAIL_MAX_CHARS - 1)}…` : s;
}

/** "TypeError [ERR_X]: message" for an error, the value itself otherwise. */
export function describeCrash(err: unknown): string {
  if (err instanceof Error) {
    const code = 'code' in err && typeof err.code === 'string' ? ` [${err.code}]` : '';
    return clip(`${err.name}${code}: ${err.message}`);
  }
  return clip(`non-error thrown: ${String(err)}`);
}

/**
 * An uncaught exception or unhandled rejection leaves the process in a state nobody planned
 * for: record it, log it, and exit with EXIT_CRASH so init starts a clean agent. Returns a
 * function that removes the handlers.
 */
export function installCrashHandlers(
  runState: Pick<RunState, 'markCrash'>,
  log: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
  target: NodeJS.EventEmitter = process,
): () => void {
  let crashing = false;
  const crash = (err: unknown, origin: string): void => {
    if (crashing) {
      // A second error while recording the first: leave now
      exit(EXIT_CRASH);
      return;
    }
    crashing = true;
    try {
      runState.markCrash(describeCrash(err));
    } catch (markErr) {
      log.error({ err: markErr }, 'cannot record the crash');
    }
    log.fatal({ err, origin, exitCode: EXIT_CRASH }, 'agent crashed; exiting for init to restart it');
    exit(EXIT_CRASH);
  };
  const onException = (err: unknown, origin?: string): void => crash(err, origin ?? 'uncaughtException');
  const onRejection = (reason: unknown): void => crash(reason, 'unhandledRejection');
  target.on('uncaughtException', onException);
  target.on('unhandledRejection', onRejection);
  return () => {
    target.off('uncaughtException', onException);
    target.off('unhandledRejection', onRejection);
  };
}

// Feeding the hardware watchdog: the device's escalation step 3 (reboot) is "stop feeding".
//
// Two kinds of target, told apart by fstat once opened:
//  - a watchdog character device (/dev/watchdog, when the agent holds it itself): a feed writes
//    one byte; the planned close writes "V" (the magic close) so a driver that allows it stops;
//    a reboot just stops writing and the SoC resets at its timeout.
//  - a regular file: the firmware keeper's heartbeat (/run/vigil/heartbeat; the keeper holds
//    /dev/watchdog, see docs/firmware.md "The watchdog chain"). A feed rewrites it with
//    "ok <epoch ms>" (the keeper watches the mtime); "reset <reason>" has the keeper stop
//    feeding at once; "stopped" (the planned close) disarms the keeper until the next feed, so
//    a technician's stop or an update's restart does not reset the board minutes later.
//
// Feeds run on a timer of the main event loop and write synchronously: a blocked loop feeds
// nothing by construction, and a spinning loop (turning, but seconds per turn) is caught by the
// loop monitor's lag. Synchronous writes also keep the order: a feed can never land after
// "reset" or "stopped".

import { closeSync, constants, fstatSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../lib/clock.js';
import { VigilError, errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/service.js';

export type WatchdogState = 'feeding' | 'withheld' | 'reboot' | 'closed';

export interface WatchdogStatus {
  path: string;
  /** feeding: fed at the last tick; withheld: not fed, see withheldReason; reboot: never again; closed: no target. */
  state: WatchdogState;
  feeds: number;
  /** Epoch ms (the agent's clock) of the last feed. */
  lastFedAt: number | null;
  /** Why the last tick did not feed (or why there is no target). */
  withheldReason: string | null;
}

/** What the feeder needs from the loop monitor; a stub in unit tests. */
export interface LoopLag {
  lagNowMs(): number;
}

export interface WatchdogFeederOptions {
  /** /dev/watchdog or the keeper's heartbeat file; '' for none (a development machine). */
  path: string;
  intervalMs: number;
  clock: Clock;
  log: Logger;
  loop: LoopLag;
  /** No feeding while the event loop runs later than this. */
  maxLagMs: number;
  /** The health monitor's verdict; false withholds the feeds. */
  healthy: () => boolean;
  /** A missing or unusable target is an error (start rejects) instead of "this board has none". */
  required?: boolean;
}

/** Error codes; only thrown when the target is required, otherwise logged with the code. */
export const WATCHDOG_ERRORS = {
  /** The path does not exist (and is not a heartbeat file to create). */
  WATCHDOG_MISSING: { retryable: false },
  /** The path is neither a character device nor a regular file. */
  WATCHDOG_UNSUPPORTED: { retryable: false },
  /** open() failed (EBUSY: someone else holds the device; EACCES). */
  WATCHDOG_OPEN_FAILED: { retryable: true },
  /** A feed or the close could not be written (EIO, ENOSPC). */
  WATCHDOG_WRITE_FAILED: { retryable: true },
} as const;
export type WatchdogErrorCode = keyof typeof WATCHDOG_ERRORS;

export function watchdogError(code: WatchdogErrorCode, message: string, cause?: unknown): VigilError {
  return new VigilError(code, message, { retryable: WATCHDOG_ERRORS[code].retryable, cause });
}

/** Any byte but the magic "V" keeps a watchdog device from firing. */
const FEED_BYTE = Buffer.from('.');
const MAGIC_CLOSE = Buffer.from('V');
// Opened without blocking: a FIFO configured by mistake would otherwise hang the loop until a
// reader appears. Watchdog writes never block, so O_NONBLOCK changes nothing for them.
const OPEN_FLAGS = constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** How long an unconfigured feeder sleeps between looks at its stop signal. */
const IDLE_SLEEP_MS = 3_600_000;

type Target = { kind: 'device'; fd: number } | { kind: 'file' };

export class WatchdogFeeder implements Service {
  readonly #o: WatchdogFeederOptions;
  #target: Target | undefined;
  #state: WatchdogState = 'closed';
  #feeds = 0;
  #lastFedAt: number | null = null;
  #withheldReason: string | null = null;
  /** The error code last logged for opening, so a missing device is logged once, not every tick. */
  #openProblem: string | undefined;
  /** Likewise for writes: EIO every 5 s is one log line until it clears. */
  #writeProblem: string | undefined;
  #running = false;
  /** The coming stop is not a planned one: close without disarming. */
  #keepArmed = false;

  constructor(o: WatchdogFeederOptions) {
    if (!(o.intervalMs > 0)) throw new RangeError(`watchdog intervalMs must be > 0, got ${o.intervalMs}`);
    this.#o = o;
  }

  status(): WatchdogStatus {
    return { path: this.#o.path, state: this.#state, feeds: this.#feeds, lastFedAt: this.#lastFedAt, withheldReason: this.#withheldReason };
  }

  /** Feeds until `signal` aborts, then closes as planned (the watchdog or the keeper disarms). */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new VigilError('WATCHDOG_RUNNING', 'the watchdog feeder is already running');
    this.#running = true;
    try {
      if (this.#o.path === '') {
        this.#withheldReason = 'no watchdog configured';
        this.#o.log.info('no watchdog configured: nothing will reset this device if the agent hangs');
        // Long sleeps may end early (timer limits): wait in a loop
        while (!signal.aborted) await this.#o.clock.sleep(IDLE_SLEEP_MS, signal);
        return;
      }
      // A required target that cannot be opened is the caller's error to handle; otherwise the
      // feeder retries at every tick, quietly.
      const err = this.#open();
      if (err && this.#o.required) throw err;
      while (!signal.aborted) {
        this.#tick();
        await this.#o.clock.sleep(this.#o.intervalMs, signal);
      }
    } finally {
      this.#running = false;
      this.#close(signal.aborted);
    }
  }

  /**
   * Escalation step 3: never feed again, so the board resets (at once through the keeper, within
   * the device's timeout otherwise). Stays in force whatever happens after.
   */
  stopForReboot(reason: string): void {
    if (this.#state === 'reboot') return;
    this.#state = 'reboot';
    this.#withheldReason = reason;
    this.#o.log.error({ path: this.#o.path, reason }, 'no longer feeding the watchdog: the board resets');
    if (this.#target?.kind === 'file') this.#writeFile(`reset ${oneLine(reason)}\n`);
  }

  /**
   * The coming stop is an escalation restart (step 2), not a planned stop: the close writes
   * neither "stopped" nor the magic "V", so a new agent that never comes back to feed is still
   * caught by the keeper's staleness (or the device's timeout). Call it before aborting.
   */
  keepArmedOnStop(): void {
    this.#keepArmed = true;
  }

  #tick(): void {
    if (this.#state === 'reboot') return;
    if (!this.#target && this.#open()) return;
    const why = this.#whyWithhold();
    if (why) {
      if (this.#state !== 'withheld') this.#o.log.warn({ path: this.#o.path, reason: why }, 'withholding the watchdog feed');
      this.#state = 'withheld';
      this.#withheldReason = why;
      return;
    }
    const wrote =
      this.#target!.kind === 'device' ? this.#writeDevice(FEED_BYTE) : this.#writeFile(`ok ${this.#o.clock.now()}\n`);
    if (!wrote) {
      this.#state = 'withheld';
      this.#withheldReason = `cannot write ${this.#o.path} (${this.#writeProblem})`;
      return;
    }
    if (this.#state === 'withheld') this.#o.log.info({ path: this.#o.path }, 'feeding the watchdog again');
    this.#state = 'feeding';
    this.#withheldReason = null;
    this.#feeds++;
    this.#lastFedAt = this.#o.clock.now();
  }

  #whyWithhold(): string | null {
    let healthy: boolean;
    try {
      healthy = this.#o.healthy();
    } catch (err) {
      this.#o.log.error({ err }, 'the health verdict threw; treated as unhealthy');
      healthy = false;
    }
    if (!healthy) return 'the agent is not healthy';
    const lag = this.#o.loop.lagNowMs();
    if (lag > this.#o.maxLagMs) return `event loop ${Math.round(lag)} ms late (limit ${this.#o.maxLagMs} ms)`;
    return null;
  }

  /** Opens and classifies the target; returns the problem, if any (logged once per kind). */
  #open(): VigilError | undefined {
    const path = this.#o.path;
    let err: VigilError;
    try {
      this.#target = classify(path);
      if (this.#openProblem) this.#o.log.info({ path }, 'watchdog target available');
      this.#openProblem = undefined;
      if (this.#state === 'reboot' && this.#target.kind === 'file') this.#writeFile(`reset ${oneLine(this.#withheldReason ?? '')}\n`);
      return undefined;
    } catch (e) {
      err = e instanceof VigilError ? e : watchdogError('WATCHDOG_OPEN_FAILED', `cannot open ${path}: ${(e as Error).message}`, e);
    }
    const key = `${err.code}:${errorCode(err.cause) ?? ''}`;
    if (this.#openProblem !== key) {
      if (err.code === 'WATCHDOG_MISSING' && !this.#o.required) {
        this.#o.log.warn({ path, code: err.code }, 'no watchdog here: feeding nothing (a development machine?)');
      } else {
        this.#o.log.error({ path, code: err.code, err }, 'cannot use the watchdog');
      }
      this.#openProblem = key;
    }
    if (this.#state !== 'reboot') {
      this.#state = 'closed';
      this.#withheldReason = err.message;
    }
    return err;
  }

  #writeDevice(bytes: Buffer): boolean {
    const t = this.#target;
    if (t?.kind !== 'device') return false;
    try {
      writeSync(t.fd, bytes);
      return this.#wrote();
    } catch (err) {
      return this.#writeFailed(err);
    }
  }

  #writeFile(line: string): boolean {
    try {
      writeFileSync(this.#o.path, line);
      return this.#wrote();
    } catch (err) {
      return this.#writeFailed(err);
    }
  }

  #wrote(): true {
    if (this.#writeProblem) this.#o.log.info({ path: this.#o.path }, 'watchdog writes work again');
    this.#writeProblem = undefined;
    return true;
  }

  #writeFailed(err: unknown): false {
    const code = errorCode(err) ?? 'UNKNOWN';
    if (this.#writeProblem !== code) {
      const e = watchdogError('WATCHDOG_WRITE_FAILED', `cannot write ${this.#o.path}: ${(err as Error).message}`, err);
      this.#o.log.error({ path: this.#o.path, code: e.code, err: e }, 'cannot feed the watchdog');
    }
    this.#writeProblem = code;
    return false;
  }

  /**
   * The planned close (the stop was asked for) disarms; after stopForReboot or keepArmedOnStop,
   * or when the feeder ends for any other reason, nothing is written: the device resets if
   * nobody feeds it.
   */
  #close(planned: boolean): void {
    const t = this.#target;
    this.#target = undefined;
    if (!t) return;
    if (planned && !this.#keepArmed && this.#state !== 'reboot') {
      if (t.kind === 'device') this.#writeDevice(MAGIC_CLOSE);
      else this.#writeFile('stopped\n');
      this.#o.log.info({ path: this.#o.path }, 'watchdog closed (planned stop)');
    }
    if (t.kind === 'device') {
      try {
        closeSync(t.fd);
      } catch {
        // nothing left to do with a descriptor that will not close
      }
    }
    if (this.#state !== 'reboot') this.#state = 'closed';
  }
}

/**
 * Opens `path` and tells a device from a heartbeat file. A missing file whose directory exists
 * is a heartbeat file the agent has not written yet (the keeper arms on the first write); a
 * missing path under /dev is a board without a watchdog: device nodes never appear by writing.
 */
function classify(path: string): Target {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    if (errorCode(err) === 'EISDIR') throw watchdogError('WATCHDOG_UNSUPPORTED', `${path} is a directory, not a watchdog`, err);
    if (errorCode(err) !== 'ENOENT') throw err;
    if (path.startsWith('/dev/') || !isDirectory(dirname(path))) {
      throw watchdogError('WATCHDOG_MISSING', `${path} does not exist`, err);
    }
    return { kind: 'file' };
  }
  let st;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (st.isCharacterDevice()) return { kind: 'device', fd };
  closeSync(fd);
  if (st.isFile()) return { kind: 'file' };
  throw watchdogError('WATCHDOG_UNSUPPORTED', `${path} is neither a character device nor a regular file`);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

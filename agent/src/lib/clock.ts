// Time comes in as a clock so that tests and drills can run hours in seconds.
// `now()` is wall time (what a capture is stamped with); `monotonic()` is for durations,
// backoff and timeouts, and never jumps when NTP sets the wall clock.

export interface Clock {
  /** Wall-clock time, epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin. */
  monotonic(): number;
  /** Resolves after `ms` clock milliseconds, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Real milliseconds that `ms` clock milliseconds take (for timeouts handed to other programs). */
  toRealMs(ms: number): number;
}

/** setTimeout's largest delay; longer sleeps end early, and every loop re-checks its state. */
const MAX_TIMER_MS = 2_147_483_647;

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    signal?.addEventListener('abort', done, { once: true });
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: realSleep,
  toRealMs: (ms) => ms,
};

/**
 * A clock that runs `scale` times faster than real time, starting from the real time now.
 * Used by drills (a 47-minute outage in under ten seconds) with the real agent process.
 */
export function scaledClock(scale: number): Clock {
  if (!(scale >= 1)) throw new RangeError(`clock scale must be >= 1, got ${scale}`);
  const wall0 = Date.now();
  const mono0 = performance.now();
  const elapsed = (): number => (performance.now() - mono0) * scale;
  return {
    now: () => Math.floor(wall0 + elapsed()),
    monotonic: () => elapsed(),
    sleep: (ms, signal) => realSleep(ms / scale, signal),
    toRealMs: (ms) => ms / scale,
  };
}

/** A clock that moves only when told to; for unit tests. */
export class FakeClock implements Clock {
  #now: number;
  #mono = 0;
  #sleepers: { at: number; resolve: () => void }[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#mono;
  }

  toRealMs(ms: number): number {
    return ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const entry = { at: this.#mono + ms, resolve };
      this.#sleepers.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== entry);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** Moves time forward, waking sleepers in order and letting their continuations run. */
  async advance(ms: number): Promise<void> {
    const target = this.#mono + ms;
    for (;;) {
      this.#sleepers.sort((a, b) => a.at - b.at);
      const next = this.#sleepers[0];
      if (!next || next.at > target) break;
      this.#sleepers.shift();
      this.#now += next.at - this.#mono;
      this.#mono = next.at;
      next.resolve();
      await new Promise((r) => setImmediate(r));
    }
    this.#now += target - this.#mono;
    this.#mono = target;
    await new Promise((r) => setImmediate(r));
  }

  get pendingSleepers(): number {
    return this.#sleepers.length;
  }
}

// Time comes in from outside so that tests can run a five-minute silence in a millisecond.
// The cloud schedules by wall time (epoch ms), because its schedules are stored in the
// database (a notification's next attempt) and must mean the same after a restart.

/** Resolves after `ms`, or early (never rejecting) when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface Clock {
  /** Unix epoch milliseconds. */
  now: () => number;
  sleep: Sleep;
}

/** setTimeout's largest delay; a longer sleep ends early and the loop re-checks its state. */
const MAX_TIMER_MS = 2_147_483_647;

export const systemSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
    signal?.addEventListener('abort', done, { once: true });
  });

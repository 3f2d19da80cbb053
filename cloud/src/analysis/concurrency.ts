// At most N calls at once to a model server, the rest waiting their turn in arrival order. A
// local model server runs a few requests in parallel at best; more only make each one slower
// until all of them time out. A waiter whose signal aborts leaves the line at once.

export const DEFAULT_ANALYSER_CONCURRENCY = 4;

/** Thrown by acquire() when the caller's signal aborts while waiting. */
export class WaitAborted extends Error {
  readonly code = 'WAIT_ABORTED';
}

interface Waiter {
  grant: () => void;
}

export class ConcurrencyLimit {
  readonly limit: number;
  #active = 0;
  readonly #waiting: Waiter[] = [];

  constructor(limit: number = DEFAULT_ANALYSER_CONCURRENCY) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer (got ${limit})`);
    this.limit = limit;
  }

  get inFlight(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** Resolves with a release function once a slot is free (FIFO). Release exactly once. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new WaitAborted('aborted while waiting for a slot'));
    if (this.#active < this.limit && this.#waiting.length === 0) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(w);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new WaitAborted('aborted while waiting for a slot'));
      };
      const w: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#releaser());
        },
      };
      this.#waiting.push(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Runs `fn` in a slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter: nobody can overtake the line in between.
      if (next) next.grant();
      else this.#active--;
    };
  }
}

/**
 * Fire-and-forget work that is still accounted for: each task gets a signal that stop()
 * aborts, at most `concurrency` run at once (the rest wait their turn, up to `maxQueued`),
 * and idle() resolves when none is running or waiting. Used for triage calls, which must not
 * hold up the request that opened the alert, nor outlive the cloud's close().
 */
export class BackgroundTasks {
  readonly #controller = new AbortController();
  readonly #queue: ((signal: AbortSignal) => Promise<void>)[] = [];
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #onError: (err: unknown) => void;
  #running = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(o: { concurrency: number; maxQueued: number; onError: (err: unknown) => void }) {
    this.#concurrency = o.concurrency;
    this.#maxQueued = o.maxQueued;
    this.#onError = o.onError;
  }

  /** False when the task was dropped (stopped, or too many waiting). */
  add(task: (signal: AbortSignal) => Promise<void>): boolean {
    if (this.#controller.signal.aborted || this.#queue.length >= this.#maxQueued) return false;
    this.#queue.push(task);
    this.#pump();
    return true;
  }

  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Aborts running tasks, drops waiting ones, and resolves when the running ones have ended. */
  async stop(): Promise<void> {
    this.#controller.abort();
    this.#queue.length = 0;
    await this.idle();
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      const task = this.#queue.shift()!;
      this.#running++;
      void task(this.#controller.signal)
        .catch(this.#onError)
        .finally(() => {
          this.#running--;
          this.#pump();
          if (this.#running === 0 && this.#queue.length === 0) {
            for (const w of this.#idleWaiters.splice(0)) w();
          }
        });
    }
  }
}

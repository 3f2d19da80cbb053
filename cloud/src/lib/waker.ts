import type { Sleep } from './clock.js';

/**
 * A sleep that something else can cut short: `wait()` resolves after its timeout, on `wake()`,
 * or on abort. A wake that arrives while nobody waits is remembered, so it is never lost
 * between one pass of a loop and its next wait.
 */
export class Waker {
  readonly #sleep: Sleep;
  #pending = false;
  #cut: (() => void) | undefined;

  constructor(sleep: Sleep) {
    this.#sleep = sleep;
  }

  wake(): void {
    if (this.#cut) this.#cut();
    else this.#pending = true;
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return;
    }
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#cut = onAbort;
    try {
      await this.#sleep(ms, inner.signal);
    } finally {
      this.#cut = undefined;
      signal.removeEventListener('abort', onAbort);
    }
  }
}

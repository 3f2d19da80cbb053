import type { Clock } from './clock.js';

/**
 * A sleep that something else can cut short: `wait()` resolves after its timeout, on `wake()`,
 * or on abort. A wake that arrives while nobody waits is remembered, so it is never lost
 * between "found nothing to do" and "went to sleep".
 */
export class Waker {
  #pending = false;
  #wake: (() => void) | null = null;

  constructor(private readonly clock: Clock) {}

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return;
    }
    const cut = new AbortController();
    const onAbort = (): void => cut.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#wake = () => cut.abort();
    try {
      await this.clock.sleep(ms, cut.signal);
    } finally {
      this.#wake = null;
      this.#pending = false;
      signal.removeEventListener('abort', onAbort);
    }
  }
}

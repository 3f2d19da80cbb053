/**
 * Runs async functions one at a time per key, in call order; different keys run side by side.
 * The fleet watch keys by device, so a sweep and a heartbeat of one device never decide from two
 * snapshots at once, while other devices' heartbeats do not wait behind them.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const tail = this.#tails.get(key) ?? Promise.resolve();
    const result = tail.then(fn, fn);
    // The chain must not break (or leak a rejection) when one function fails.
    const next = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, next);
    // The last in line leaves no entry behind.
    void next.then(() => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    });
    return result;
  }
}

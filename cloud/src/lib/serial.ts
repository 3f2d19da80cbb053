/**
 * Runs async functions one at a time, in call order. The fleet watch uses it so that a sweep
 * and a heartbeat for the same device never decide from two different snapshots at once.
 */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    // The chain must not break (or leak a rejection) when one function fails.
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/**
 * "Something changed" for many listeners at once: the live stream's connections wait on it
 * instead of polling the database. Listeners are plain callbacks; one that throws does not
 * stop the others.
 */
export class Broadcast {
  readonly #listeners = new Set<() => void>();

  /** Returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  notify(): void {
    for (const fn of [...this.#listeners]) {
      try {
        fn();
      } catch {
        // a listener's trouble is its own
      }
    }
  }
}

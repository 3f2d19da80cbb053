/**
 * The agent's most recent log lines, kept in memory for the heartbeat: when the device is not
 * nominal, the cloud (and the technician reading the alert) sees what the agent was saying.
 * A pino destination: it receives each serialised JSON line.
 */
export class LogRing {
  readonly #lines: string[] = [];

  constructor(readonly capacity = 200) {}

  write(line: string): void {
    this.#lines.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    if (this.#lines.length > this.capacity) this.#lines.splice(0, this.#lines.length - this.capacity);
  }

  /** The newest `n` lines, oldest first. */
  recent(n = this.capacity): string[] {
    return this.#lines.slice(-n);
  }
}

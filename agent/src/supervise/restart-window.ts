// The restart budget of one supervisor: how many restarts it may make within a sliding window
// of monotonic time before it concludes that restarting does not help.
import { VigilError } from '../lib/errors.js';

/** At most `maxRestarts` restarts within any `periodMs` of monotonic time (OTP's intensity/period). */
export interface RestartBudget {
  maxRestarts: number;
  periodMs: number;
}

/** A budget that cannot be enforced is a wiring bug; say which number is wrong at construction. */
export function checkBudget(name: string, budget: RestartBudget): void {
  if (!Number.isInteger(budget.maxRestarts) || budget.maxRestarts < 0) {
    throw new VigilError('SUPERVISOR_BAD_BUDGET', `supervisor "${name}": budget.maxRestarts must be an integer >= 0, got ${budget.maxRestarts}`);
  }
  if (!Number.isFinite(budget.periodMs) || budget.periodMs <= 0) {
    throw new VigilError('SUPERVISOR_BAD_BUDGET', `supervisor "${name}": budget.periodMs must be a number > 0, got ${budget.periodMs}`);
  }
}

/**
 * The monotonic times of the restarts still inside the window. A sliding window rather than a
 * counter reset every period: five crashes straddling a period boundary are still five crashes
 * close together. It never holds more than `maxRestarts` entries, so every call is cheap.
 */
export class RestartWindow {
  #at: number[] = [];

  constructor(readonly budget: RestartBudget) {}

  /** Records a restart at `now` and returns true, or returns false when it would exceed the budget. */
  tryRecord(now: number): boolean {
    this.#prune(now);
    if (this.#at.length >= this.budget.maxRestarts) return false;
    this.#at.push(now);
    return true;
  }

  /** Restarts within the window ending at `now`. */
  count(now: number): number {
    let n = 0;
    for (const at of this.#at) if (now - at < this.budget.periodMs) n++;
    return n;
  }

  clear(): void {
    this.#at = [];
  }

  #prune(now: number): void {
    while (this.#at.length > 0 && now - this.#at[0]! >= this.budget.periodMs) this.#at.shift();
  }
}

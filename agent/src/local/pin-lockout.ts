// Brute-force protection for the setup PIN. The fifth wrong PIN in a row locks the form for 30 s
// (fingers slip: four are free); every wrong PIN after that locks it again for twice as long, up
// to 15 min. While locked nothing is checked, not even the right PIN. The right PIN, or an hour
// without a wrong one, forgets them.
//
// One lock for the whole device, not one per address: anyone on the LAN can take a new address.
// The cost is that someone on the LAN can keep the technician locked out; restarting the agent
// (or the device) clears the lock. At 8 digits, 15-minute locks leave ~300 tries a day: 10^8
// PINs take centuries.
import type { Clock } from '../lib/clock.js';

export const LOCKOUT_FREE_ATTEMPTS = 5;
export const LOCKOUT_FIRST_MS = 30_000;
export const LOCKOUT_MAX_MS = 15 * 60_000;
/** Wrong PINs are forgotten after this long without one. */
export const LOCKOUT_FORGET_MS = 60 * 60_000;

export type PinVerdict = { ok: true } | { ok: false; locked: false; failures: number; remaining: number } | { ok: false; locked: true; retryAfterMs: number; failures: number };

export class PinLockout {
  #failures = 0;
  #lastFailureAt = 0;
  #lockedUntil = 0;

  constructor(private readonly clock: Clock) {}

  /** How long the form stays locked (ms); 0 when a PIN may be tried now. */
  lockedForMs(): number {
    return Math.max(0, this.#lockedUntil - this.clock.monotonic());
  }

  /**
   * Checks one attempt: `correct` is consulted only when the form is not locked. A wrong PIN
   * counts, and from the fifth on locks the form.
   */
  attempt(correct: () => boolean): PinVerdict {
    const now = this.clock.monotonic();
    const locked = this.lockedForMs();
    if (locked > 0) return { ok: false, locked: true, retryAfterMs: locked, failures: this.#failures };
    if (this.#failures > 0 && now - this.#lastFailureAt > LOCKOUT_FORGET_MS) this.#failures = 0;
    if (correct()) {
      this.#failures = 0;
      return { ok: true };
    }
    this.#failures++;
    this.#lastFailureAt = now;
    const over = this.#failures - LOCKOUT_FREE_ATTEMPTS;
    if (over < 0) return { ok: false, locked: false, failures: this.#failures, remaining: -over };
    const ms = Math.min(LOCKOUT_MAX_MS, LOCKOUT_FIRST_MS * 2 ** Math.min(over, 20));
    this.#lockedUntil = now + ms;
    return { ok: false, locked: true, retryAfterMs: ms, failures: this.#failures };
  }
}

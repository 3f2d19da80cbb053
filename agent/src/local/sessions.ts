// Sessions of the status page: a random id in an HttpOnly, SameSite=Strict cookie, kept in
// memory only (a restart of the agent asks for the PIN again), each good for 12 hours.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';

export const SESSION_COOKIE = 'vigil_session';
export const SESSION_TTL_MS = 12 * 3_600_000;
/** The oldest session goes when a new one would pass this (phones, laptops, a few technicians). */
export const MAX_SESSIONS = 32;

export class Sessions {
  /** Session id → expiry (monotonic ms), oldest first. */
  readonly #sessions = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  create(): string {
    this.prune();
    while (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, this.clock.monotonic() + SESSION_TTL_MS);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (id === undefined) return false;
    const until = this.#sessions.get(id);
    if (until === undefined) return false;
    if (until <= this.clock.monotonic()) {
      this.#sessions.delete(id);
      return false;
    }
    return true;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.#sessions.delete(id);
  }

  get size(): number {
    this.prune();
    return this.#sessions.size;
  }

  private prune(): void {
    const now = this.clock.monotonic();
    for (const [id, until] of this.#sessions) if (until <= now) this.#sessions.delete(id);
  }
}

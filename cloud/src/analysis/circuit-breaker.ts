// A circuit breaker for a remote model server: after a run of failures (no connection, no
// answer in time, 5xx) calls stop going out for a while, so a dead server is not hammered and
// callers get a fast refusal with the time to come back, instead of a 2-minute timeout each.
// closed → (failureThreshold consecutive failures) → open → (openMs) → half-open: one probe
// at a time → (successesToClose successes) → closed; a failed probe → open again.
// Outcomes of calls admitted before the last change of state are ignored: a slow failure from
// before the breaker closed again must not count against the new period.

export type BreakerState = 'closed' | 'open' | 'half-open';

export const BREAKER_FAILURE_THRESHOLD = 5;
export const BREAKER_OPEN_MS = 60_000;
export const BREAKER_SUCCESSES_TO_CLOSE = 2;
/** Half-open and a probe already out: come back this much later. */
export const BREAKER_PROBE_BUSY_RETRY_MS = 5_000;

export interface CircuitBreakerOptions {
  now: () => number;
  failureThreshold?: number | undefined;
  openMs?: number | undefined;
  successesToClose?: number | undefined;
  /** Called once per change of state. */
  onStateChange?: ((change: { from: BreakerState; to: BreakerState; status: BreakerStatus }) => void) | undefined;
}

export interface BreakerStatus {
  state: BreakerState;
  consecutiveFailures: number;
  /** When the breaker last opened (epoch ms); null while closed. */
  openedAt: number | null;
  /** When an open breaker lets a probe through; null unless open. */
  nextProbeAt: number | null;
}

/** A call let through: report how it went, exactly once (later reports are ignored). */
export interface BreakerPermit {
  readonly probe: boolean;
  success(): void;
  failure(): void;
  /** Neither: the call says nothing about the server's health (a 4xx, a 429, an abort). */
  release(): void;
}

export type Admission = { ok: true; permit: BreakerPermit } | { ok: false; retryAt: number; state: BreakerState };

export class CircuitBreaker {
  readonly #now: () => number;
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #toClose: number;
  readonly #onChange: CircuitBreakerOptions['onStateChange'];
  #state: BreakerState = 'closed';
  /** Bumped on every change of state; a permit from an older generation no longer counts. */
  #generation = 0;
  #failures = 0;
  #successes = 0;
  #openedAt: number | null = null;
  #probeOut = false;

  constructor(o: CircuitBreakerOptions) {
    this.#now = o.now;
    this.#threshold = o.failureThreshold ?? BREAKER_FAILURE_THRESHOLD;
    this.#openMs = o.openMs ?? BREAKER_OPEN_MS;
    this.#toClose = o.successesToClose ?? BREAKER_SUCCESSES_TO_CLOSE;
    this.#onChange = o.onStateChange;
    for (const [name, v] of [['failureThreshold', this.#threshold], ['openMs', this.#openMs], ['successesToClose', this.#toClose]] as const) {
      if (!Number.isInteger(v) || v < (name === 'openMs' ? 0 : 1)) throw new RangeError(`circuit breaker: ${name} must be a positive integer (got ${v})`);
    }
  }

  /** The state now (an open breaker whose time is up reads as half-open). */
  get state(): BreakerState {
    this.#tick();
    return this.#state;
  }

  status(): BreakerStatus {
    this.#tick();
    return this.#snapshot();
  }

  #snapshot(): BreakerStatus {
    return {
      state: this.#state,
      consecutiveFailures: this.#failures,
      openedAt: this.#openedAt,
      nextProbeAt: this.#state === 'open' && this.#openedAt !== null ? this.#openedAt + this.#openMs : null,
    };
  }

  /** Would a call be refused now? Without taking the half-open probe slot. */
  refusal(): { retryAt: number; state: BreakerState } | null {
    this.#tick();
    if (this.#state === 'open') return { retryAt: this.#openedAt! + this.#openMs, state: 'open' };
    if (this.#state === 'half-open' && this.#probeOut) return { retryAt: this.#now() + BREAKER_PROBE_BUSY_RETRY_MS, state: 'half-open' };
    return null;
  }

  admit(): Admission {
    const refused = this.refusal();
    if (refused) return { ok: false, ...refused };
    const probe = this.#state === 'half-open';
    if (probe) this.#probeOut = true;
    const generation = this.#generation;
    let done = false;
    const settle = (outcome: 'success' | 'failure' | 'release'): void => {
      if (done) return;
      done = true;
      if (probe && generation === this.#generation) this.#probeOut = false;
      if (generation !== this.#generation) return;
      if (outcome === 'success') this.#onSuccess();
      else if (outcome === 'failure') this.#onFailure();
    };
    return { ok: true, permit: { probe, success: () => settle('success'), failure: () => settle('failure'), release: () => settle('release') } };
  }

  #onSuccess(): void {
    this.#failures = 0;
    if (this.#state === 'half-open' && ++this.#successes >= this.#toClose) this.#move('closed');
  }

  #onFailure(): void {
    this.#failures++;
    if (this.#state === 'half-open' || (this.#state === 'closed' && this.#failures >= this.#threshold)) {
      this.#openedAt = this.#now();
      this.#move('open');
    }
  }

  #tick(): void {
    if (this.#state === 'open' && this.#now() >= this.#openedAt! + this.#openMs) this.#move('half-open');
  }

  #move(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#successes = 0;
    this.#probeOut = false;
    if (to === 'closed') {
      this.#failures = 0;
      this.#openedAt = null;
    }
    this.#onChange?.({ from, to, status: this.#snapshot() });
  }
}

import type { Logger } from 'pino';
import { JITTER_FRACTION } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { AnalysisError, ANALYSIS_ERRORS, toAnalysisError, type AnalysisInput, type AnalysisResult, type Analyser } from './analyser.js';
import { CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker.js';
import { ConcurrencyLimit, DEFAULT_ANALYSER_CONCURRENCY, WaitAborted } from './concurrency.js';

// Wraps any analyser with what a remote model server needs: a limit on calls at once (FIFO),
// retries of transient failures with exponential backoff, and a circuit breaker. Calls that
// cannot go out now are refused at once with ANALYSER_BREAKER_OPEN and retryAt, so a job queue
// parks the job instead of holding it in memory: nothing waits here for a dead server, nothing
// is lost. Every call resolves, or rejects with an AnalysisError.
//
// Decisions:
// - Every attempt goes through the breaker (it counts attempts, not jobs): it measures the
//   server. A breaker that opens between two retries ends the call with its refusal.
// - Only a result is a success to the breaker and only ANALYSER_UNREACHABLE/TIMEOUT/SERVER_ERROR
//   are failures; 4xx (429 included), bad responses and aborts neither trip nor reset it.
// - A retry keeps its slot while it sleeps: a struggling server then gets fewer calls, not more.
// - 429 waits the server's Retry-After when it is at most maxRetryAfterMs (30 s); a longer one
//   ends the call at once with retryAt = now + Retry-After, so a slot is not held for minutes.
//   Without Retry-After a 429 backs off like any transient failure.

export const ANALYSER_MAX_RETRIES = 3;
export const ANALYSER_RETRY_BASE_MS = 1_000;
export const ANALYSER_RETRY_MAX_DELAY_MS = 30_000;
export const ANALYSER_MAX_RETRY_AFTER_MS = 30_000;

/** Delay before retry number `retry` (1 = the first): 1 s, 2 s, 4 s … capped, jittered ±20 %. */
export function analyserRetryDelay(
  retry: number,
  random: () => number = Math.random,
  baseMs: number = ANALYSER_RETRY_BASE_MS,
  maxMs: number = ANALYSER_RETRY_MAX_DELAY_MS,
): number {
  const base = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(Math.min(maxMs, base * (1 + JITTER_FRACTION * (2 * random() - 1))));
}

export interface ResilientAnalyserOptions {
  analyser: Analyser;
  clock: Clock;
  random?: (() => number) | undefined;
  logger: Logger;
  concurrency?: number | undefined;
  maxRetries?: number | undefined;
  retryBaseMs?: number | undefined;
  retryMaxDelayMs?: number | undefined;
  maxRetryAfterMs?: number | undefined;
  breaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'openMs' | 'successesToClose'> | undefined;
}

export interface ResilientAnalyserStatus {
  state: BreakerState;
  consecutiveFailures: number;
  inFlight: number;
  queued: number;
  openedAt: number | null;
  nextProbeAt: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  /** The code and message of the last failed attempt. */
  lastError: string | null;
}

export class ResilientAnalyser implements Analyser {
  readonly name: string;
  readonly #inner: Analyser;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #logger: Logger;
  readonly #limit: ConcurrencyLimit;
  readonly #breaker: CircuitBreaker;
  readonly #maxRetries: number;
  readonly #baseMs: number;
  readonly #maxDelayMs: number;
  readonly #maxRetryAfterMs: number;
  #lastSuccessAt: number | null = null;
  #lastFailureAt: number | null = null;
  #lastError: string | null = null;

  constructor(o: ResilientAnalyserOptions) {
    this.#inner = o.analyser;
    this.name = o.analyser.name;
    this.#clock = o.clock;
    this.#random = o.random ?? Math.random;
    this.#logger = o.logger;
    this.#limit = new ConcurrencyLimit(o.concurrency ?? DEFAULT_ANALYSER_CONCURRENCY);
    this.#maxRetries = o.maxRetries ?? ANALYSER_MAX_RETRIES;
    this.#baseMs = o.retryBaseMs ?? ANALYSER_RETRY_BASE_MS;
    this.#maxDelayMs = o.retryMaxDelayMs ?? ANALYSER_RETRY_MAX_DELAY_MS;
    this.#maxRetryAfterMs = o.maxRetryAfterMs ?? ANALYSER_MAX_RETRY_AFTER_MS;
    if (!Number.isInteger(this.#maxRetries) || this.#maxRetries < 0) throw new RangeError(`maxRetries must be a whole number (got ${this.#maxRetries})`);
    this.#breaker = new CircuitBreaker({
      now: o.clock.now,
      ...o.breaker,
      onStateChange: ({ from, to, status }) => {
        const fields = { analyser: this.name, from, to, consecutiveFailures: status.consecutiveFailures, nextProbeAt: status.nextProbeAt };
        if (to === 'open') this.#logger.warn({ ...fields, lastError: this.#lastError }, 'analyser circuit breaker open: calls are refused until the next probe');
        else this.#logger.info(fields, `analyser circuit breaker ${to}`);
      },
    });
  }

  status(): ResilientAnalyserStatus {
    const b = this.#breaker.status();
    return {
      ...b,
      inFlight: this.#limit.inFlight,
      queued: this.#limit.queued,
      lastSuccessAt: this.#lastSuccessAt,
      lastFailureAt: this.#lastFailureAt,
      lastError: this.#lastError,
    };
  }

  async analyse(input: AnalysisInput, signal?: AbortSignal): Promise<AnalysisResult> {
    // Refused before waiting in line: a caller learns at once that the server is out.
    const refused = this.#breaker.refusal();
    if (refused) throw breakerOpen(refused.retryAt, refused.state, 0);
    let release: () => void;
    try {
      release = await this.#limit.acquire(signal);
    } catch (err) {
      if (err instanceof WaitAborted) throw new AnalysisError('ANALYSER_ABORTED', 'aborted while waiting for a slot', { attempts: 0 });
      throw toAnalysisError(err);
    }
    try {
      return await this.#attempts(input, signal);
    } finally {
      release();
    }
  }

  async #attempts(input: AnalysisInput, signal: AbortSignal | undefined): Promise<AnalysisResult> {
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new AnalysisError('ANALYSER_ABORTED', 'the call was aborted', { attempts: attempt - 1 });
      const admission = this.#breaker.admit();
      if (!admission.ok) throw breakerOpen(admission.retryAt, admission.state, attempt - 1);
      let err: AnalysisError;
      try {
        const result = await this.#inner.analyse(input, signal);
        admission.permit.success();
        this.#lastSuccessAt = this.#clock.now();
        return { ...result, attempts: attempt };
      } catch (e) {
        err = toAnalysisError(e);
      }
      const kind = ANALYSIS_ERRORS[err.code].breaker;
      if (kind === 'failure') admission.permit.failure();
      else admission.permit.release();
      this.#lastFailureAt = this.#clock.now();
      this.#lastError = `${err.code}: ${err.message}`;

      const retriesLeft = attempt <= this.#maxRetries;
      if (!err.transient || !retriesLeft || signal?.aborted) {
        const retryAt = err.retryAfterMs !== undefined ? this.#clock.now() + err.retryAfterMs : undefined;
        if (err.transient) this.#logger.warn({ analyser: this.name, code: err.code, attempts: attempt }, 'analysis failed after retries');
        throw err.with({ attempts: attempt, retryAt });
      }
      let delay = analyserRetryDelay(attempt, this.#random, this.#baseMs, this.#maxDelayMs);
      if (err.code === 'ANALYSER_RATE_LIMITED' && err.retryAfterMs !== undefined) {
        if (err.retryAfterMs > this.#maxRetryAfterMs) throw err.with({ attempts: attempt, retryAt: this.#clock.now() + err.retryAfterMs });
        delay = err.retryAfterMs;
      }
      // This failure (or another call's) opened the breaker: say so now rather than after the sleep.
      const refused = this.#breaker.refusal();
      if (refused?.state === 'open') throw breakerOpen(refused.retryAt, refused.state, attempt);
      this.#logger.debug({ analyser: this.name, code: err.code, attempt, delayMs: delay }, 'analysis attempt failed; retrying');
      await this.#clock.sleep(delay, signal);
    }
  }
}

function breakerOpen(retryAt: number, state: BreakerState, attempts: number): AnalysisError {
  const why = state === 'open' ? 'the model server is failing' : 'a probe call is testing the model server';
  return new AnalysisError('ANALYSER_BREAKER_OPEN', `circuit breaker ${state}: ${why}; try again after ${new Date(retryAt).toISOString()}`, {
    retryAt,
    attempts,
  });
}

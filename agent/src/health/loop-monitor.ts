import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

/** How often the monitor's own timer runs: the finest lag `lagNowMs()` can see between turns. */
export const LOOP_TICK_MS = 100;
/** The sampling step of Node's event-loop-delay histogram. */
export const LOOP_HISTOGRAM_RESOLUTION_MS = 20;

export interface LoopLagSample {
  /** The worst lag since the last sample, ms. */
  lagMaxMs: number;
  /** The 99th percentile of the histogram's lags since the last sample, ms. */
  lagP99Ms: number;
}

export interface LoopMonitorOptions {
  tickMs?: number;
  resolutionMs?: number;
}

/**
 * Measures how late the main event loop runs: Node's delay histogram for the statistics, and a
 * timer of its own for "right now". The histogram only records a delay once the loop comes
 * back, and a sample taken while the loop is stuck says nothing; `lagNowMs()` also counts how
 * overdue the own timer is at this instant, so a loop that still turns but spends seconds in
 * each turn (a spinning zombie) shows up to whoever asks between those turns. Real time
 * (performance.now), not the agent's clock: lag is a property of this process, and a scaled or
 * fake clock would hide it.
 */
export class LoopMonitor {
  readonly #tickMs: number;
  readonly #resolutionMs: number;
  readonly #histogram: IntervalHistogram;
  #timer: NodeJS.Timeout | undefined;
  /** When the own timer is due next (performance.now ms). */
  #due = 0;
  /** How late the own timer was when it last ran. */
  #lastLagMs = 0;
  /** The worst own-timer lag since the last sample. */
  #windowMaxMs = 0;

  constructor(o: LoopMonitorOptions = {}) {
    this.#tickMs = o.tickMs ?? LOOP_TICK_MS;
    this.#resolutionMs = o.resolutionMs ?? LOOP_HISTOGRAM_RESOLUTION_MS;
    if (!(this.#tickMs > 0)) throw new RangeError(`LoopMonitor tickMs must be > 0, got ${this.#tickMs}`);
    this.#histogram = monitorEventLoopDelay({ resolution: this.#resolutionMs });
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  start(): void {
    if (this.#timer) return;
    this.#histogram.reset();
    this.#histogram.enable();
    this.#lastLagMs = 0;
    this.#windowMaxMs = 0;
    this.#schedule(performance.now());
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#histogram.disable();
    this.#lastLagMs = 0;
  }

  /** How late the loop is running now: the own timer's lag at its last run, or how overdue it is. */
  lagNowMs(): number {
    if (!this.#timer) return 0;
    return Math.max(this.#lastLagMs, performance.now() - this.#due);
  }

  /** The lag since the previous sample; starts the next window. */
  sample(): LoopLagSample {
    const h = this.#histogram;
    // The histogram records whole timer intervals (resolution included); an empty one reports
    // placeholder values, so count decides.
    const histMaxMs = h.count > 0 ? Math.max(0, h.max / 1e6 - this.#resolutionMs) : 0;
    const histP99Ms = h.count > 0 ? Math.max(0, h.percentile(99) / 1e6 - this.#resolutionMs) : 0;
    // The stall in progress (overdue now) belongs to this window too
    const lagMaxMs = Math.max(histMaxMs, this.#windowMaxMs, this.lagNowMs());
    h.reset();
    this.#windowMaxMs = 0;
    return { lagMaxMs: round(lagMaxMs), lagP99Ms: round(Math.min(histP99Ms, lagMaxMs)) };
  }

  #schedule(now: number): void {
    this.#due = now + this.#tickMs;
    this.#timer = setTimeout(() => this.#tick(), this.#tickMs);
    // Measuring must not keep the process alive
    this.#timer.unref();
  }

  #tick(): void {
    const now = performance.now();
    this.#lastLagMs = Math.max(0, now - this.#due);
    this.#windowMaxMs = Math.max(this.#windowMaxMs, this.#lastLagMs);
    this.#schedule(now);
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

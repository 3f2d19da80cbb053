import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

export interface Service {
  /** Runs until `signal` aborts; a rejection is a crash. */
  start(signal: AbortSignal): Promise<void>;
}

export const RESTART_MIN_DELAY_MS = 1_000;
export const RESTART_MAX_DELAY_MS = 30_000;

/**
 * Keeps one service running: a crash is logged and the service restarted after a growing
 * delay, until `signal` aborts. The full supervision tree (budgets, escalation) builds on this.
 */
export async function keepRunning(name: string, service: Service, signal: AbortSignal, clock: Clock, log: Logger): Promise<void> {
  let delay = RESTART_MIN_DELAY_MS;
  while (!signal.aborted) {
    const started = clock.monotonic();
    try {
      await service.start(signal);
      if (signal.aborted) return;
      log.warn({ service: name }, 'service returned without being stopped; restarting');
    } catch (err) {
      if (signal.aborted) return;
      log.error({ service: name, err }, 'service crashed; restarting');
    }
    if (clock.monotonic() - started > RESTART_MAX_DELAY_MS) delay = RESTART_MIN_DELAY_MS;
    await clock.sleep(delay, signal);
    delay = Math.min(delay * 2, RESTART_MAX_DELAY_MS);
  }
}

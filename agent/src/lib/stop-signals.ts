import type { Logger } from './logger.js';

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * The process's stop contract with init: the first SIGTERM/SIGINT aborts `stop` (a graceful
 * stop); if that has not finished within `deadlineMs` the process exits 1 anyway, so a stuck
 * part cannot keep the device from restarting; a second signal exits at once (130).
 * Returns a function that removes the handlers.
 */
export function onStopSignals(
  stop: AbortController,
  o: { log: Logger; deadlineMs: number; exit?: (code: number) => void; target?: NodeJS.EventEmitter },
): () => void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  const target = o.target ?? process;
  let deadline: NodeJS.Timeout | undefined;
  const handler = (sig: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      o.log.warn({ sig }, 'second signal: exiting at once');
      exit(130);
      return;
    }
    o.log.info({ sig, deadlineMs: o.deadlineMs }, 'stopping');
    deadline = setTimeout(() => {
      o.log.error({ deadlineMs: o.deadlineMs }, 'graceful stop missed its deadline; exiting');
      exit(1);
    }, o.deadlineMs);
    deadline.unref();
    stop.abort();
  };
  for (const s of STOP_SIGNALS) target.on(s, handler);
  return () => {
    clearTimeout(deadline);
    for (const s of STOP_SIGNALS) target.off(s, handler);
  };
}

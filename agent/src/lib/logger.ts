import { pino, type Logger } from 'pino';
import type { LogRing } from './log-ring.js';

export type { Logger };

/**
 * JSON logs to stdout (the init system or the test harness collects them), and, when a ring is
 * given, into it too for the heartbeat. pino.multistream writes in-process: no worker thread,
 * which would not survive bundling into one executable.
 */
export function createLogger(level = process.env.VIGIL_LOG_LEVEL ?? 'info', ring?: LogRing): Logger {
  const base = { svc: 'vigil-agent' };
  if (!ring) return pino({ level, base });
  return pino({ level, base }, pino.multistream([{ level, stream: pino.destination(1) }, { level, stream: ring }]));
}

/** A logger that writes nothing; tests pass it unless they want to see logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

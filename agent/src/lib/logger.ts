import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout (the init system or the test harness collects them). */
export function createLogger(level = process.env.VIGIL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'vigil-agent' } });
}

/** A logger that writes nothing; tests pass it unless they want to see logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * A long-running part of the agent. The supervision tree (supervise/supervisor.ts) starts it,
 * restarts it after a crash and stops it by aborting `signal`.
 */
export interface Service {
  /** Runs until `signal` aborts; a rejection is a crash. */
  start(signal: AbortSignal): Promise<void>;
}

// The supervision tree's public shapes: specs going in, status and events coming out.
// Kept apart from supervisor.ts (which re-exports them) so the class stays readable.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/service.js';
import type { RestartBudget } from './restart-window.js';

export type RestartType = 'permanent' | 'transient' | 'temporary';

export interface ChildSpec {
  id: string;
  restart: RestartType;
  service: Service;
}

export type ChildState = 'running' | 'restarting' | 'stopped' | 'failed';

export interface ChildStatus {
  id: string;
  restart: RestartType;
  state: ChildState;
  /** Restarts this supervisor made of this child, by itself or by `restartChild`. */
  restarts: number;
  /** `at` is clock.monotonic(). */
  lastCrash: { at: number; code: string; message: string } | null;
  /** clock.monotonic() when the current run started; null when not running. */
  startedAt: number | null;
  /** When the child's service is a Supervisor. */
  supervisor?: SupervisorStatus;
}

export interface SupervisorStatus {
  name: string;
  state: 'idle' | 'running' | 'gave_up' | 'stopped';
  budget: RestartBudget;
  restartsInWindow: number;
  children: ChildStatus[];
}

export type SupervisorEvent =
  | { type: 'crash'; supervisor: string; child: string; error: unknown; willRestart: boolean }
  | { type: 'gave_up'; supervisor: string; reason: string }
  | { type: 'child_gave_up'; supervisor: string; child: string; reason: string }
  | { type: 'restarted_by_request'; supervisor: string; child: string };

export interface SupervisorOptions {
  name: string;
  budget: RestartBudget;
  clock: Clock;
  log: Logger;
  restartDelayMs?: number;
  onEvent?: (e: SupervisorEvent) => void;
}

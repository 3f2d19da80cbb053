// The harness of the supervisor's unit tests: probe services the tests crash, finish and stop by
// hand, a log that keeps its lines, and a rig of one supervisor over given children.
import type { Test } from 'tap';
import { pino } from 'pino';
import { FakeClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import type { Service } from '../src/lib/service.js';
import {
  Supervisor,
  type RestartBudget,
  type RestartType,
  type SupervisorEvent,
} from '../src/supervise/supervisor.js';

/** A service the test drives: it runs until its signal aborts, or until crash()/finish(). */
export class Probe implements Service {
  readonly signals: AbortSignal[] = [];
  /** A child slow to stop: ignores its signal until release(). */
  stubborn = false;
  /** When set, start() throws this synchronously instead of returning a promise. */
  throwSync: unknown = null;
  #settle: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  #returned = 0;

  start(signal: AbortSignal): Promise<void> {
    this.signals.push(signal);
    if (this.throwSync !== null) throw this.throwSync;
    return new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
      if (!this.stubborn) signal.addEventListener('abort', () => resolve(), { once: true });
    }).finally(() => {
      this.#returned++;
    });
  }

  /** How many times start() was called. */
  get runs(): number {
    return this.signals.length;
  }

  /** The signal of the current (last) run. */
  get signal(): AbortSignal {
    return this.signals.at(-1)!;
  }

  /** Whether the last run's start() has settled. */
  get returned(): boolean {
    return this.#returned === this.runs;
  }

  crash(err: unknown = new VigilError('PROBE_CRASH', 'probe crashed')): void {
    this.#settle!.reject(err);
  }

  finish(): void {
    this.#settle!.resolve();
  }

  release(): void {
    this.#settle!.resolve();
  }
}

/** Lets promise continuations run (the supervisor reacts to a settled start() in a few hops). */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export function captureLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

export interface Rig {
  clock: FakeClock;
  sup: Supervisor;
  events: SupervisorEvent[];
  lines: Record<string, unknown>[];
  stop: AbortController;
  /** The settled start(): 'resolved' or the rejection. */
  result: Promise<unknown>;
  /** Whether start() has settled yet. */
  done(): boolean;
}

export function supervisor(name: string, clock: FakeClock, budget: RestartBudget, events: SupervisorEvent[], log = captureLog().log): Supervisor {
  return new Supervisor({ name, budget, clock, log, onEvent: (e) => events.push(e) });
}

/** A started supervisor with the given children; stopped at teardown. */
export function rig(t: Test, children: [string, RestartType, Service][], budget: RestartBudget = { maxRestarts: 3, periodMs: 60_000 }): Rig {
  const clock = new FakeClock();
  const events: SupervisorEvent[] = [];
  const { log, lines } = captureLog();
  const sup = supervisor('root', clock, budget, events, log);
  for (const [id, restart, service] of children) sup.add({ id, restart, service });
  const stop = new AbortController();
  let settled = false;
  const result = sup.start(stop.signal).then(
    () => 'resolved',
    (e: unknown) => e,
  );
  void result.then(() => (settled = true));
  t.teardown(async () => {
    stop.abort();
    await result;
  });
  return { clock, sup, events, lines, stop, result, done: () => settled };
}

export const childState = (sup: Supervisor, id: string) => sup.status().children.find((c) => c.id === id);


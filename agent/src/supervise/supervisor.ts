/**
 * The in-process supervision tree, in the spirit of OTP: a Supervisor is itself a Service, so
 * supervisors nest (AgentSupervisor → CameraSupervisor → VariantSupervisor → Uploader).
 *
 * One-for-one: only the child that crashed is restarted; its siblings are not touched. A crash
 * is `start()` rejecting (or throwing synchronously) while the child's signal is not aborted;
 * whatever a child does after being told to stop is a stop, not a crash. Restarts wait
 * `restartDelayMs` (default DEFAULT_RESTART_DELAY_MS) on the injected clock, so a child failing at
 * once does not spin the CPU while the budget runs out.
 *
 * Restart types, after a crash / after returning on its own:
 *   permanent  restarted / restarted (it is meant to run for ever)
 *   transient  restarted / 'stopped' (a normal return means its work is done)
 *   temporary  'failed'  / 'stopped' (never restarted)
 *
 * Budget: every restart this supervisor makes, of any child, is counted in a sliding window of
 * `budget.periodMs` of monotonic time. When a restart would make more than `budget.maxRestarts`
 * within the window, the supervisor gives up: it emits and logs 'gave_up' with the reason (which
 * child, its last error) at once, so that a child ignoring its signal cannot hide the cause;
 * then it aborts every child and waits for them; then `start()` rejects with
 * SupervisorGaveUpError (code SUPERVISOR_GAVE_UP). At the root this is escalation step 2: the
 * agent exits and init starts it again. A permanent child returning on its own is restarted
 * too, so it counts against the budget like a crash (without a 'crash' event).
 *
 * Escalation from a nested supervisor is deliberately NOT a restart. When a child rejects with
 * SUPERVISOR_GAVE_UP, that subtree has just spent its whole budget; restarting it at once would
 * only repeat that, and counting it against this supervisor's budget would let one failing part
 * (say, the uploads of one camera) take its healthy siblings (that camera's capture) down with
 * it. So the child goes to 'failed', this supervisor emits and logs 'child_gave_up', and carries
 * on with its budget untouched. Someone above (the HealthMonitor) decides later whether to call
 * `restartChild(id)`, which starts the subtree again with a fresh budget. The give-up is
 * recognised by its code, so a service that wraps a supervisor and passes its error on escalates
 * the same way.
 *
 * `start(signal)` starts the children in the order they were added and runs until `signal`
 * aborts; then it aborts every child and resolves once all have returned (children must honour
 * their signal; the process's stop deadline in lib/stop-signals covers one that does not). Each
 * run of a child gets its own AbortController, linked to the supervisor's, so listeners a crashed
 * run left on its signal die with it instead of piling up over thousands of restarts.
 *
 * A supervisor may be started again after it stopped or gave up; each start is fresh (empty
 * window, every child launched). `restartChild` restarts are counted in the child's `restarts`
 * but not in the budget: they are a decision from above, not a crash loop.
 *
 * `status()` only copies fields (no I/O, no allocation beyond the result): the health monitor and
 * the heartbeat call it every minute.
 */
import type { Clock } from '../lib/clock.js';
import { errorCode } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Service } from '../lib/service.js';
import { checkBudget, RestartWindow, type RestartBudget } from './restart-window.js';
import { RETURNED_CODE, summariseCrash, supervisorError, SupervisorGaveUpError } from './supervisor-errors.js';
import type { ChildSpec, ChildState, ChildStatus, SupervisorEvent, SupervisorOptions, SupervisorStatus } from './supervisor-types.js';

export type * from './supervisor-types.js';
export type { RestartBudget } from './restart-window.js';
export { SupervisorGaveUpError, SUPERVISOR_ERROR_RETRYABLE, type SupervisorErrorCode } from './supervisor-errors.js';

/** Default pause before a restart: long enough that a crash loop is not a tight loop. */
export const DEFAULT_RESTART_DELAY_MS = 500;

interface Child {
  spec: ChildSpec;
  state: ChildState;
  restarts: number;
  lastCrash: ChildStatus['lastCrash'];
  startedAt: number | null;
  /** Aborted to stop this child for good (remove, supervisor stop or give-up). */
  life: AbortController | null;
  /** The running restart loop; settles once the child has stopped; null once it has. */
  loop: Promise<void> | null;
  /** remove() is waiting for it: it must not be started again. */
  removing: boolean;
}

type Outcome = { crashed: false } | { crashed: true; error: unknown };

/** Aborts `child` when `parent` aborts; returns the unlink, so long-lived signals keep no stale listeners. */
function link(parent: AbortSignal, child: AbortController): () => void {
  if (parent.aborted) {
    child.abort(parent.reason);
    return () => undefined;
  }
  const onAbort = (): void => child.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return () => parent.removeEventListener('abort', onAbort);
}

export class Supervisor implements Service {
  readonly #name: string;
  readonly #budget: RestartBudget;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #restartDelayMs: number;
  readonly #onEvent: ((e: SupervisorEvent) => void) | undefined;
  readonly #window: RestartWindow;
  /** In add order, which is start order. */
  readonly #children = new Map<string, Child>();
  #state: SupervisorStatus['state'] = 'idle';
  /** Aborted when this run ends, by the caller's signal or by giving up; null when not running. */
  #run: AbortController | null = null;
  #gaveUp: SupervisorGaveUpError | null = null;

  constructor(o: SupervisorOptions) {
    checkBudget(o.name, o.budget);
    this.#name = o.name;
    this.#budget = { ...o.budget };
    this.#clock = o.clock;
    this.#log = o.log;
    this.#restartDelayMs = o.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
    this.#onEvent = o.onEvent;
    this.#window = new RestartWindow(this.#budget);
  }

  get name(): string {
    return this.#name;
  }

  /** Adds a child; while running it starts at once. */
  add(spec: ChildSpec): void {
    if (this.#children.has(spec.id)) {
      throw supervisorError('SUPERVISOR_DUPLICATE_CHILD', `supervisor "${this.#name}" already has a child "${spec.id}"`);
    }
    const child: Child = { spec, state: 'stopped', restarts: 0, lastCrash: null, startedAt: null, life: null, loop: null, removing: false };
    this.#children.set(spec.id, child);
    if (this.#isRunning()) this.#launch(child);
  }

  /** Stops the child (aborts its signal), waits for it to return, and forgets it. Unknown ids are ignored. */
  async remove(id: string): Promise<void> {
    const child = this.#children.get(id);
    if (!child) return;
    child.removing = true;
    child.life?.abort();
    await child.loop;
    // A remove that raced with another remove (or a re-add after it) must not delete the newcomer.
    if (this.#children.get(id) === child) this.#children.delete(id);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#run) {
      throw supervisorError('SUPERVISOR_ALREADY_RUNNING', `supervisor "${this.#name}" is already running`);
    }
    // Every start is a fresh start: this is how restartChild gives a nested supervisor a fresh budget.
    const run = new AbortController();
    this.#run = run;
    this.#gaveUp = null;
    this.#window.clear();
    this.#state = 'running';
    const unlink = link(signal, run);
    try {
      if (!run.signal.aborted) for (const child of this.#children.values()) this.#launch(child);
      await new Promise<void>((resolve) => {
        if (run.signal.aborted) resolve();
        else run.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      // Children's lives are linked to `run`, so all are stopping now; wait for every one.
      await Promise.all([...this.#children.values()].map((c) => c.loop));
    } finally {
      unlink();
      this.#run = null;
    }
    if (this.#gaveUp) throw this.#gaveUp;
    this.#state = 'stopped';
  }

  /**
   * Starts a 'stopped' or 'failed' child again, fresh (a nested supervisor with a fresh budget);
   * not counted against this supervisor's budget. False if the id is unknown, the child is running
   * or waiting to restart, or this supervisor is not running.
   */
  restartChild(id: string): boolean {
    const child = this.#children.get(id);
    if (!child || child.removing || !this.#isRunning() || (child.state !== 'stopped' && child.state !== 'failed')) return false;
    child.restarts++;
    this.#log.info({ supervisor: this.#name, child: id }, 'child restarted by request');
    this.#emit({ type: 'restarted_by_request', supervisor: this.#name, child: id });
    this.#launch(child);
    return true;
  }

  status(): SupervisorStatus {
    const now = this.#clock.monotonic();
    const children: ChildStatus[] = [];
    for (const c of this.#children.values()) {
      const s: ChildStatus = {
        id: c.spec.id,
        restart: c.spec.restart,
        state: c.state,
        restarts: c.restarts,
        lastCrash: c.lastCrash && { ...c.lastCrash },
        startedAt: c.startedAt,
      };
      if (c.spec.service instanceof Supervisor) s.supervisor = c.spec.service.status();
      children.push(s);
    }
    return { name: this.#name, state: this.#state, budget: { ...this.#budget }, restartsInWindow: this.#window.count(now), children };
  }

  #isRunning(): boolean {
    return this.#run !== null && !this.#run.signal.aborted;
  }

  #launch(child: Child): void {
    const life = new AbortController();
    const unlink = link(this.#run!.signal, life);
    child.life = life;
    // A child that ended on its own may be launched again before its old loop has settled; the
    // old loop then only unlinks its own life and leaves the new loop in place.
    const loop: Promise<void> = this.#keep(child, life.signal).finally(() => {
      unlink();
      if (child.loop === loop) child.loop = null;
    });
    child.loop = loop;
    // The loop handles every outcome itself; this only guards against a bug becoming an unhandled rejection.
    loop.catch((err: unknown) => this.#log.error({ supervisor: this.#name, child: child.spec.id, err }, 'supervisor bug: child loop failed'));
  }

  /** Runs the child, restarting it as its type and the budget allow, until it ends for good. */
  async #keep(child: Child, life: AbortSignal): Promise<void> {
    for (;;) {
      const outcome = await this.#runOnce(child, life);
      child.startedAt = null;
      if (life.aborted) {
        child.state = 'stopped';
        return;
      }
      if (!this.#shouldRestart(child, outcome)) return;
      child.state = 'restarting';
      await this.#clock.sleep(this.#restartDelayMs, life);
      if (life.aborted) {
        child.state = 'stopped';
        return;
      }
      child.restarts++;
    }
  }

  async #runOnce(child: Child, life: AbortSignal): Promise<Outcome> {
    const run = new AbortController();
    const unlink = link(life, run);
    child.state = 'running';
    child.startedAt = this.#clock.monotonic();
    try {
      // Called inside the try so that a synchronous throw is a crash like a rejection.
      await child.spec.service.start(run.signal);
      return { crashed: false };
    } catch (error) {
      return { crashed: true, error };
    } finally {
      unlink();
    }
  }

  /** Decides what an unrequested end means; sets the child's state and reports it. */
  #shouldRestart(child: Child, outcome: Outcome): boolean {
    const id = child.spec.id;
    const type = child.spec.restart;
    const fields = { supervisor: this.#name, child: id, restart: type };
    if (!outcome.crashed) {
      if (type !== 'permanent') {
        child.state = 'stopped';
        this.#log.info(fields, 'child finished');
        return false;
      }
      if (!this.#window.tryRecord(this.#clock.monotonic())) {
        child.state = 'failed';
        this.#giveUp(id, { code: RETURNED_CODE, message: 'a permanent child returned without being stopped' }, undefined);
        return false;
      }
      this.#log.warn(fields, 'permanent child returned without being stopped; restarting');
      return true;
    }

    const { error } = outcome;
    const crash = summariseCrash(error);
    child.lastCrash = { at: this.#clock.monotonic(), ...crash };
    if (errorCode(error) === 'SUPERVISOR_GAVE_UP') {
      child.state = 'failed';
      const reason = `child "${id}" gave up: ${crash.message}`;
      this.#log.error({ ...fields, err: error }, 'child supervisor gave up; leaving it failed for the health monitor to decide');
      this.#emit({ type: 'child_gave_up', supervisor: this.#name, child: id, reason });
      return false;
    }
    const willRestart = type !== 'temporary' && this.#window.tryRecord(this.#clock.monotonic());
    this.#log.error({ ...fields, err: error, willRestart }, willRestart ? 'child crashed; restarting' : 'child crashed');
    this.#emit({ type: 'crash', supervisor: this.#name, child: id, error, willRestart });
    if (willRestart) return true;
    child.state = 'failed';
    if (type !== 'temporary') this.#giveUp(id, crash, error);
    return false;
  }

  /** Budget spent: report why at once, then stop the whole run; start() rejects once all have stopped. */
  #giveUp(childId: string, last: { code: string; message: string }, cause: unknown): void {
    const { maxRestarts, periodMs } = this.#budget;
    const reason = `child "${childId}" would exceed the restart budget (${maxRestarts} in ${periodMs} ms); last error: ${last.code}: ${last.message}`;
    this.#gaveUp = new SupervisorGaveUpError(this.#name, { child: childId, ...last }, reason, cause);
    this.#state = 'gave_up';
    this.#log.error({ supervisor: this.#name, child: childId, lastError: last, budget: this.#budget }, `supervisor gave up: ${reason}`);
    this.#emit({ type: 'gave_up', supervisor: this.#name, reason });
    this.#run?.abort();
  }

  #emit(e: SupervisorEvent): void {
    if (!this.#onEvent) return;
    try {
      this.#onEvent(e);
    } catch (err) {
      // A broken listener must not break supervision.
      this.#log.error({ supervisor: this.#name, err, event: e.type }, 'supervisor event listener threw');
    }
  }
}

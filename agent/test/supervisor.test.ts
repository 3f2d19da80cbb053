// Unit: the supervision tree on a fake clock, with probe services the test crashes, finishes and
// stops by hand. Real processes crashing for real are in supervisor-process.test.ts.
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { FakeClock } from '../src/lib/clock.js';
import { VigilError } from '../src/lib/errors.js';
import type { Service } from '../src/lib/service.js';
import {
  DEFAULT_RESTART_DELAY_MS,
  SUPERVISOR_ERROR_RETRYABLE,
  Supervisor,
  SupervisorGaveUpError,
  type RestartBudget,
  type RestartType,
  type SupervisorEvent,
} from '../src/supervise/supervisor.js';

/** A service the test drives: it runs until its signal aborts, or until crash()/finish(). */
class Probe implements Service {
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
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function captureLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

interface Rig {
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

function supervisor(name: string, clock: FakeClock, budget: RestartBudget, events: SupervisorEvent[], log = captureLog().log): Supervisor {
  return new Supervisor({ name, budget, clock, log, onEvent: (e) => events.push(e) });
}

/** A started supervisor with the given children; stopped at teardown. */
function rig(t: Test, children: [string, RestartType, Service][], budget: RestartBudget = { maxRestarts: 3, periodMs: 60_000 }): Rig {
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

const childState = (sup: Supervisor, id: string) => sup.status().children.find((c) => c.id === id);

t.test('one-for-one: only the crashed child restarts, after the delay; its sibling is untouched', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  t.equal(a.runs, 1);
  t.equal(b.runs, 1);
  a.crash();
  await settle();
  t.equal(childState(r.sup, 'a')?.state, 'restarting');
  t.match(r.events, [{ type: 'crash', supervisor: 'root', child: 'a', willRestart: true }]);
  t.match(childState(r.sup, 'a')?.lastCrash, { at: 0, code: 'PROBE_CRASH', message: 'probe crashed' });
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS - 1);
  t.equal(a.runs, 1, 'not restarted before the delay');
  await r.clock.advance(1);
  t.equal(a.runs, 2, 'restarted once the delay has passed');
  t.equal(a.signals[0]!.aborted, false, 'the crashed run was not aborted after the fact');
  t.not(a.signals[1], a.signals[0], 'each run gets its own signal');
  t.match(childState(r.sup, 'a'), { state: 'running', restarts: 1, startedAt: DEFAULT_RESTART_DELAY_MS });
  t.equal(b.runs, 1, 'the sibling was not restarted');
  t.equal(b.signal.aborted, false, 'the sibling was not stopped');
  t.match(childState(r.sup, 'b'), { state: 'running', restarts: 0, startedAt: 0, lastCrash: null });
  t.equal(r.done(), false, 'the supervisor keeps running');
});

t.test('a custom restart delay is honoured on the injected clock', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 5, periodMs: 60_000 }, clock, log: captureLog().log, restartDelayMs: 7_000 });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop = new AbortController();
  const running = sup.start(stop.signal);
  a.crash();
  await settle();
  await clock.advance(6_999);
  t.equal(a.runs, 1);
  await clock.advance(1);
  t.equal(a.runs, 2);
  stop.abort();
  await running;
});

// [type, how it ended, restarted?, state after]
const TYPES: [RestartType, 'crash' | 'return', boolean, string][] = [
  ['permanent', 'crash', true, 'running'],
  ['permanent', 'return', true, 'running'],
  ['transient', 'crash', true, 'running'],
  ['transient', 'return', false, 'stopped'],
  ['temporary', 'crash', false, 'failed'],
  ['temporary', 'return', false, 'stopped'],
];
for (const [type, end, restarted, state] of TYPES) {
  t.test(`${type} child after a ${end}: ${restarted ? 'restarted' : 'not restarted'}, ${state}`, async (t) => {
    const p = new Probe();
    const sibling = new Probe();
    const r = rig(t, [
      ['p', type, p],
      ['sibling', 'permanent', sibling],
    ]);
    if (end === 'crash') p.crash();
    else p.finish();
    await settle();
    await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
    t.equal(p.runs, restarted ? 2 : 1);
    t.equal(childState(r.sup, 'p')?.state, state);
    t.equal(childState(r.sup, 'p')?.restarts, restarted ? 1 : 0);
    t.equal(r.sup.status().restartsInWindow, restarted ? 1 : 0, 'only restarts count against the budget');
    const crashes = r.events.filter((e) => e.type === 'crash');
    t.same(
      crashes.map((e) => e.type === 'crash' && e.willRestart),
      end === 'crash' ? [restarted] : [],
      'a crash event only for a crash',
    );
    t.equal(sibling.runs, 1);
    t.equal(r.done(), false);
  });
}

t.test('budget: maxRestarts crashes are restarted, one more gives up, stops every child and rejects', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['b', 'transient', b],
    ],
    { maxRestarts: 3, periodMs: 60_000 },
  );
  for (let i = 1; i <= 3; i++) {
    a.crash(new VigilError('E_LOOP', `crash ${i}`));
    await settle();
    await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
    t.equal(a.runs, i + 1, `crash ${i} restarted`);
  }
  t.equal(r.sup.status().restartsInWindow, 3);
  t.equal(r.done(), false);
  b.stubborn = false;
  a.crash(new VigilError('E_LOOP', 'crash 4'));
  const err = await r.result;
  t.ok(err instanceof SupervisorGaveUpError);
  t.match(err, { code: 'SUPERVISOR_GAVE_UP', supervisor: 'root', lastCrash: { child: 'a', code: 'E_LOOP', message: 'crash 4' }, retryable: false });
  t.match((err as Error).message, /supervisor "root" gave up: child "a" would exceed the restart budget \(3 in 60000 ms\); last error: E_LOOP: crash 4/);
  t.equal(b.signal.aborted, true, 'the sibling was stopped');
  t.equal(b.returned, true, 'and start() waited for it');
  t.equal(a.runs, 4, 'no fifth run');
  t.match(r.sup.status(), { state: 'gave_up', children: [{ id: 'a', state: 'failed' }, { id: 'b', state: 'stopped' }] });
  const gaveUp = r.events.filter((e) => e.type === 'gave_up');
  t.match(gaveUp, [{ type: 'gave_up', supervisor: 'root', reason: /child "a".*E_LOOP: crash 4/ }]);
  t.match(r.events.at(-2), { type: 'crash', child: 'a', willRestart: false });
  t.ok(
    r.lines.some((l) => l.level === 50 && /supervisor gave up: child "a".*crash 4/.test(String(l.msg)) && l.supervisor === 'root'),
    'the give-up is logged with the supervisor, the child and the last error',
  );
});

t.test('budget: start() waits for a child slow to stop before rejecting', async (t) => {
  const a = new Probe();
  const slow = new Probe();
  slow.stubborn = true;
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['slow', 'permanent', slow],
    ],
    { maxRestarts: 0, periodMs: 1_000 },
  );
  a.crash();
  await settle();
  t.equal(slow.signal.aborted, true);
  t.equal(r.done(), false, 'still waiting for the slow child');
  t.equal(r.sup.status().state, 'gave_up', 'already reported as given up');
  t.match(r.events, [{ type: 'crash' }, { type: 'gave_up' }], 'reported before the children have stopped');
  slow.release();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP' });
});

t.test('budget: the window slides; crashes spread beyond the period never exhaust it', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 2, periodMs: 10_000 });
  // One crash every 6 s: never more than 2 within any 10 s.
  for (let i = 0; i < 10; i++) {
    a.crash();
    await settle();
    t.equal(r.sup.status().restartsInWindow, Math.min(i + 1, 2), `crash at ${i * 6} s: only the last 10 s count`);
    await r.clock.advance(6_000);
  }
  t.equal(a.runs, 11, 'every crash restarted');
  t.equal(r.done(), false);
  await r.clock.advance(10_000);
  t.equal(r.sup.status().restartsInWindow, 0, 'old restarts leave the window');
});

t.test('budget: a window, not a counter reset every period', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 2, periodMs: 10_000 });
  // Crashes at 9 s, 11 s and 12 s: a counter reset at 10 s would allow the third.
  await r.clock.advance(9_000);
  a.crash();
  await settle();
  await r.clock.advance(2_000);
  t.equal(a.runs, 2);
  a.crash();
  await settle();
  await r.clock.advance(1_000);
  t.equal(a.runs, 3);
  a.crash();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP' });
});

t.test('budget: restarts of all children count together', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(
    t,
    [
      ['a', 'permanent', a],
      ['b', 'permanent', b],
    ],
    { maxRestarts: 2, periodMs: 60_000 },
  );
  a.crash();
  b.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs + b.runs, 4);
  b.crash();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP', lastCrash: { child: 'b' } });
});

t.test('budget: a permanent child that keeps returning spends it too', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]], { maxRestarts: 1, periodMs: 60_000 });
  a.finish();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2);
  a.finish();
  t.match(await r.result, { code: 'SUPERVISOR_GAVE_UP', lastCrash: { child: 'a', code: 'RETURNED' } });
  t.same(
    r.events.map((e) => e.type),
    ['gave_up'],
    'a return is not reported as a crash',
  );
});

t.test('nested: a sub-supervisor that gives up is left failed; the parent keeps its budget and siblings', async (t) => {
  const events: SupervisorEvent[] = [];
  const camera = new Probe();
  const upload = new Probe();
  const r = rig(t, [['camera', 'transient', camera]], { maxRestarts: 1, periodMs: 60_000 });
  const uploads = supervisor('uploads', r.clock, { maxRestarts: 1, periodMs: 60_000 }, events);
  uploads.add({ id: 'upload', restart: 'permanent', service: upload });
  r.sup.add({ id: 'uploads', restart: 'permanent', service: uploads });
  t.equal(upload.runs, 1, 'added while running: started at once');

  upload.crash(new VigilError('E_UPLOAD', 'cloud said no'));
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(upload.runs, 2);
  upload.crash(new VigilError('E_UPLOAD', 'cloud said no again'));
  await settle();

  t.match(events, [{ type: 'crash' }, { type: 'crash', willRestart: false }, { type: 'gave_up', supervisor: 'uploads' }]);
  t.match(r.events, [{ type: 'child_gave_up', supervisor: 'root', child: 'uploads', reason: /cloud said no again/ }]);
  t.notOk(
    r.events.some((e) => e.type === 'crash'),
    'not reported as an ordinary crash',
  );
  const st = childState(r.sup, 'uploads');
  t.match(st, { state: 'failed', restarts: 0, lastCrash: { code: 'SUPERVISOR_GAVE_UP' }, supervisor: { name: 'uploads', state: 'gave_up' } });
  t.equal(r.sup.status().restartsInWindow, 0, "the parent's budget is untouched");
  t.ok(
    r.lines.some((l) => l.level === 50 && l.child === 'uploads' && /gave up/.test(String(l.msg))),
    'logged by the parent',
  );

  await r.clock.advance(10 * 60_000);
  t.equal(upload.runs, 2, 'not restarted by the parent, however long we wait');
  t.equal(camera.runs, 1, 'the sibling kept running');
  t.equal(camera.signal.aborted, false);
  t.equal(r.done(), false, 'the parent did not give up');

  // The parent's budget (1) is whole: one crash of the sibling is still restarted.
  camera.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(camera.runs, 2);
});

t.test('restartChild brings a failed sub-supervisor back with a fresh budget', async (t) => {
  const events: SupervisorEvent[] = [];
  const upload = new Probe();
  const r = rig(t, []);
  const uploads = supervisor('uploads', r.clock, { maxRestarts: 1, periodMs: 60_000 }, events);
  uploads.add({ id: 'upload', restart: 'permanent', service: upload });
  r.sup.add({ id: 'uploads', restart: 'permanent', service: uploads });
  upload.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  upload.crash();
  await settle();
  t.equal(childState(r.sup, 'uploads')?.state, 'failed');

  t.equal(r.sup.restartChild('uploads'), true);
  t.equal(upload.runs, 3, 'the subtree runs again');
  t.match(r.events.at(-1), { type: 'restarted_by_request', supervisor: 'root', child: 'uploads' });
  t.match(childState(r.sup, 'uploads'), { state: 'running', restarts: 1, supervisor: { state: 'running', restartsInWindow: 0 } });
  t.equal(r.sup.restartChild('uploads'), false, 'not while it runs');

  // Still well within the first 60 s: with the old window this crash would give up again.
  upload.crash();
  await settle();
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(upload.runs, 4, 'restarted: the budget is fresh');
  t.equal(childState(r.sup, 'uploads')?.state, 'running');
});

t.test('restartChild: stopped and failed children only, and only while running', async (t) => {
  const done = new Probe();
  const broken = new Probe();
  const running = new Probe();
  const idle = new Supervisor({ name: 'idle', budget: { maxRestarts: 1, periodMs: 1_000 }, clock: new FakeClock(), log: captureLog().log });
  idle.add({ id: 'x', restart: 'permanent', service: new Probe() });
  t.equal(idle.restartChild('x'), false, 'a supervisor that is not running starts nothing');

  const r = rig(t, [
    ['done', 'transient', done],
    ['broken', 'temporary', broken],
    ['running', 'permanent', running],
  ]);
  done.finish();
  broken.crash();
  running.crash();
  await settle();
  t.equal(r.sup.restartChild('nope'), false, 'unknown id');
  t.equal(r.sup.restartChild('running'), false, 'waiting to restart');
  t.equal(r.sup.restartChild('done'), true, 'stopped');
  t.equal(r.sup.restartChild('broken'), true, 'failed');
  t.equal(done.runs, 2);
  t.equal(broken.runs, 2);
  t.equal(r.sup.status().restartsInWindow, 1, 'requested restarts are not counted against the budget');
});

t.test('dynamic children: add starts at once, a duplicate throws, remove stops, waits and forgets', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]]);
  const c = new Probe();
  c.stubborn = true;
  r.sup.add({ id: 'c', restart: 'permanent', service: c });
  t.equal(c.runs, 1);
  t.throws(() => r.sup.add({ id: 'c', restart: 'permanent', service: new Probe() }), { code: 'SUPERVISOR_DUPLICATE_CHILD' });

  let removed = false;
  const removing = r.sup.remove('c').then(() => (removed = true));
  await settle();
  t.equal(c.signal.aborted, true, 'its signal is aborted');
  t.equal(removed, false, 'remove waits for it to return');
  t.ok(childState(r.sup, 'c'), 'still listed while stopping');
  t.equal(r.sup.restartChild('c'), false, 'a child being removed cannot be restarted');
  c.release();
  await removing;
  t.equal(childState(r.sup, 'c'), undefined, 'forgotten');
  t.equal(r.events.length, 0, 'a removal is not a crash');
  await r.clock.advance(60_000);
  t.equal(c.runs, 1, 'never restarted');
  t.equal(a.runs, 1, 'the other child untouched');
  t.equal(a.signal.aborted, false);

  c.stubborn = false;
  r.sup.add({ id: 'c', restart: 'permanent', service: c });
  t.equal(c.runs, 2, 'the id is free again');
  await r.sup.remove('unknown');
});

t.test('remove: a child that has stopped but is not yet forgotten cannot be restarted', async (t) => {
  const c = new Probe();
  const r = rig(t, [['c', 'transient', c]]);
  const removing = r.sup.remove('c');
  // Try restartChild on every microtask hop until the child shows 'stopped' (before remove resumes).
  let attempted: boolean | undefined;
  const poll = (hops: number): void => {
    if (attempted === undefined && childState(r.sup, 'c')?.state === 'stopped') attempted = r.sup.restartChild('c');
    else if (hops > 0) void Promise.resolve().then(() => poll(hops - 1));
  };
  poll(100);
  await removing;
  t.equal(attempted, false, 'refused while remove() waits');
  t.equal(c.runs, 1);
  t.same(r.sup.status().children, []);
});

t.test('remove a child waiting in its restart delay: it is not restarted', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'permanent', a]]);
  a.crash();
  await settle();
  t.equal(childState(r.sup, 'a')?.state, 'restarting');
  await r.sup.remove('a');
  t.equal(r.clock.pendingSleepers, 0, 'its delay was cancelled');
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
  t.equal(a.runs, 1);
  t.same(r.sup.status().children, []);
});

t.test('stop while a child is in its restart delay: start() resolves at once, no restart', async (t) => {
  const a = new Probe();
  const b = new Probe();
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  a.crash();
  await settle();
  t.equal(r.clock.pendingSleepers, 1);
  r.stop.abort();
  t.equal(await r.result, 'resolved');
  t.equal(b.signal.aborted, true);
  t.equal(r.clock.pendingSleepers, 0, 'the delay was cancelled');
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS * 10);
  t.equal(a.runs, 1);
  t.match(r.sup.status(), { state: 'stopped', children: [{ state: 'stopped', startedAt: null }, { state: 'stopped', startedAt: null }] });
});

t.test('a child that rejects when told to stop has not crashed', async (t) => {
  const a: Service = {
    start: (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new VigilError('E_ABORTED', 'aborted')))),
  };
  const r = rig(t, [['a', 'permanent', a]]);
  r.stop.abort();
  t.equal(await r.result, 'resolved');
  t.same(r.events, []);
  t.equal(childState(r.sup, 'a')?.lastCrash, null);
});

t.test('a synchronous throw in start() is a crash like a rejection', async (t) => {
  const a = new Probe();
  const b = new Probe();
  a.throwSync = new VigilError('E_SYNC', 'threw at once');
  const r = rig(t, [
    ['a', 'permanent', a],
    ['b', 'permanent', b],
  ]);
  t.equal(b.runs, 1, 'the next child still started');
  await settle();
  t.match(r.events, [{ type: 'crash', child: 'a', willRestart: true }]);
  t.match(childState(r.sup, 'a')?.lastCrash, { code: 'E_SYNC', message: 'threw at once' });
  a.throwSync = null;
  await r.clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2);
  t.equal(childState(r.sup, 'a')?.state, 'running');
});

t.test('a crash without a code or an Error is still summarised', async (t) => {
  const a = new Probe();
  const r = rig(t, [['a', 'temporary', a]]);
  a.crash('just a string');
  await settle();
  t.match(childState(r.sup, 'a'), { state: 'failed', lastCrash: { code: 'UNCODED', message: 'just a string' } });
});

t.test('status nests sub-supervisors and is a copy', async (t) => {
  const r = rig(t, [['camera', 'transient', new Probe()]], { maxRestarts: 25, periodMs: 60_000 });
  const variants = supervisor('variants', r.clock, { maxRestarts: 50, periodMs: 60_000 }, []);
  variants.add({ id: 'compressed', restart: 'permanent', service: new Probe() });
  t.equal(variants.status().state, 'idle');
  t.match(variants.status().children, [{ id: 'compressed', state: 'stopped', startedAt: null }]);
  await r.clock.advance(1_000);
  r.sup.add({ id: 'variants', restart: 'permanent', service: variants });
  const st = r.sup.status();
  t.same(st, {
    name: 'root',
    state: 'running',
    budget: { maxRestarts: 25, periodMs: 60_000 },
    restartsInWindow: 0,
    children: [
      { id: 'camera', restart: 'transient', state: 'running', restarts: 0, lastCrash: null, startedAt: 0 },
      {
        id: 'variants',
        restart: 'permanent',
        state: 'running',
        restarts: 0,
        lastCrash: null,
        startedAt: 1_000,
        supervisor: {
          name: 'variants',
          state: 'running',
          budget: { maxRestarts: 50, periodMs: 60_000 },
          restartsInWindow: 0,
          children: [{ id: 'compressed', restart: 'permanent', state: 'running', restarts: 0, lastCrash: null, startedAt: 1_000 }],
        },
      },
    ],
  });
  st.budget.maxRestarts = 0;
  st.children[0]!.state = 'failed';
  t.equal(r.sup.status().budget.maxRestarts, 25, 'changing a status changes nothing');
  t.equal(r.sup.status().children[0]!.state, 'running');
});

t.test('a supervisor runs again after it stopped, and not twice at once', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 1, periodMs: 60_000 }, clock, log: captureLog().log });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop1 = new AbortController();
  const first = sup.start(stop1.signal);
  await t.rejects(sup.start(new AbortController().signal), { code: 'SUPERVISOR_ALREADY_RUNNING' });
  t.equal(a.runs, 1, 'the second start started nothing');
  stop1.abort();
  await first;
  t.equal(sup.status().state, 'stopped');
  const stop2 = new AbortController();
  const second = sup.start(stop2.signal);
  t.equal(a.runs, 2);
  t.equal(sup.status().state, 'running');
  stop2.abort();
  await second;
});

t.test('a signal already aborted: start() returns without starting anything', async (t) => {
  const a = new Probe();
  const sup = new Supervisor({ name: 's', budget: { maxRestarts: 1, periodMs: 1_000 }, clock: new FakeClock(), log: captureLog().log });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  await sup.start(AbortSignal.abort());
  t.equal(a.runs, 0);
  t.equal(sup.status().state, 'stopped');
});

t.test('a listener that throws does not break supervision', async (t) => {
  const clock = new FakeClock();
  const a = new Probe();
  const { log, lines } = captureLog();
  const sup = new Supervisor({
    name: 's',
    budget: { maxRestarts: 1, periodMs: 60_000 },
    clock,
    log,
    onEvent: () => {
      throw new Error('listener bug');
    },
  });
  sup.add({ id: 'a', restart: 'permanent', service: a });
  const stop = new AbortController();
  const running = sup.start(stop.signal);
  a.crash();
  await settle();
  await clock.advance(DEFAULT_RESTART_DELAY_MS);
  t.equal(a.runs, 2, 'restarted all the same');
  t.ok(lines.some((l) => l.msg === 'supervisor event listener threw'));
  stop.abort();
  await running;
});

t.test('budgets are checked at construction', async (t) => {
  const base = { name: 's', clock: new FakeClock(), log: captureLog().log };
  for (const budget of [
    { maxRestarts: -1, periodMs: 1_000 },
    { maxRestarts: 1.5, periodMs: 1_000 },
    { maxRestarts: 1, periodMs: 0 },
    { maxRestarts: 1, periodMs: Number.NaN },
  ]) {
    t.throws(() => new Supervisor({ ...base, budget }), { code: 'SUPERVISOR_BAD_BUDGET' }, JSON.stringify(budget));
  }
  t.doesNotThrow(() => new Supervisor({ ...base, budget: { maxRestarts: 0, periodMs: 1 } }));
});

t.test('error codes: none is retryable', async (t) => {
  t.same(SUPERVISOR_ERROR_RETRYABLE, {
    SUPERVISOR_GAVE_UP: false,
    SUPERVISOR_DUPLICATE_CHILD: false,
    SUPERVISOR_BAD_BUDGET: false,
    SUPERVISOR_ALREADY_RUNNING: false,
  });
  const e = new SupervisorGaveUpError('s', { child: 'c', code: 'X', message: 'm' }, 'why', new Error('cause'));
  t.ok(e instanceof VigilError);
  t.match(e, { code: 'SUPERVISOR_GAVE_UP', retryable: false, name: 'SupervisorGaveUpError', message: 'supervisor "s" gave up: why' });
  t.match(e.cause, { message: 'cause' });
});
